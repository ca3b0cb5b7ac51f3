"""Python checks for jobs/judged.yaml: each gets (answer, row, result) and returns a bool,
a 0-1 score, or (bool, reason)."""


def one_sentence(answer: str, row: dict, result: dict) -> tuple[bool, str]:
    sentences = [s for s in answer.replace("!", ".").replace("?", ".").split(".") if s.strip()]
    return len(sentences) == 1, f"{len(sentences)} sentences"
