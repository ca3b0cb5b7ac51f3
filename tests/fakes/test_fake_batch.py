"""The fake server's batch APIs (tests/fakes/batch.py), driven over HTTP as a client would."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.fakes import FakeServer

PROMPTS = {f"k{i}": f"question number {i}" for i in range(5)}
MODEL = {"openai": "gpt-4o-mini", "groq": "llama-3.1-8b-instant", "anthropic": "claude-3-5-haiku-20241022",
         "gemini": "gemini-2.5-flash"}


def client(fake: FakeServer, flavor: str, key: str | None = "") -> httpx.Client:
    key = fake.keys[flavor] if key == "" else key
    headers = {}
    if key is not None:
        headers = {"anthropic": {"x-api-key": key, "anthropic-version": "2023-06-01"},
                   "gemini": {"x-goog-api-key": key}}.get(flavor, {"Authorization": f"Bearer {key}"})
    return httpx.Client(base_url=fake.base_url(flavor), headers=headers, timeout=5)


def expected(flavor: str, key: str) -> str:
    return f"{MODEL[flavor]} says: {PROMPTS[key]}"


# ---------------------------------------------------------------- OpenAI-style (openai, groq)


def openai_line(flavor: str, key: str, **body: Any) -> str:
    return json.dumps({"custom_id": key, "method": "POST", "url": "/v1/chat/completions",
                       "body": {"model": MODEL[flavor], "messages": [{"role": "user", "content": PROMPTS[key]}],
                                **body}})


def openai_submit(c: httpx.Client, lines: list[str]) -> dict[str, Any]:
    upload = c.post("/files", data={"purpose": "batch"},
                    files={"file": ("batch.jsonl", ("\n".join(lines) + "\n").encode(), "application/jsonl")})
    assert upload.status_code == 200, upload.text
    file = upload.json()
    assert file["object"] == "file" and file["purpose"] == "batch" and file["id"].startswith("file-")
    made = c.post("/batches", json={"input_file_id": file["id"], "endpoint": "/v1/chat/completions",
                                    "completion_window": "24h", "metadata": {"job": "t"}})
    assert made.status_code == 200, made.text
    batch: dict[str, Any] = made.json()
    assert batch["object"] == "batch" and batch["status"] == "validating" and batch["id"].startswith("batch_")
    return batch


def openai_wait(c: httpx.Client, batch_id: str, polls: int = 20) -> tuple[dict[str, Any], list[str]]:
    seen = []
    for _ in range(polls):
        batch: dict[str, Any] = c.get(f"/batches/{batch_id}").json()
        seen.append(batch["status"])
        if batch["status"] in ("completed", "failed", "expired", "cancelled"):
            return batch, seen
    raise AssertionError(f"batch never finished: {seen}")


def openai_lines(c: httpx.Client, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    got = c.get(f"/files/{file_id}/content")
    assert got.status_code == 200
    return [json.loads(line) for line in got.text.splitlines()]


@pytest.mark.parametrize("flavor", ["openai", "groq"])
def test_openai_batch_round_trip(fake: FakeServer, flavor: str) -> None:
    fake.batch.polls_until_done = 2
    with client(fake, flavor) as c:
        batch = openai_submit(c, [openai_line(flavor, k) for k in PROMPTS])
        done, seen = openai_wait(c, batch["id"])
        assert seen == ["in_progress", "in_progress", "completed"]
        assert done["request_counts"] == {"total": 5, "completed": 5, "failed": 0}
        assert done["error_file_id"] is None and done["model"] == MODEL[flavor]
        assert done["completed_at"] >= done["created_at"] and done["metadata"] == {"job": "t"}
        lines = openai_lines(c, done["output_file_id"])
        assert [x["custom_id"] for x in lines] == list(PROMPTS)
        for line in lines:
            assert line["error"] is None and line["response"]["status_code"] == 200
            body = line["response"]["body"]
            assert body["object"] == "chat.completion"
            assert body["choices"][0]["message"]["content"] == expected(flavor, line["custom_id"])
            assert body["usage"]["completion_tokens"] == len(expected(flavor, line["custom_id"]).split())
        assert done["usage"]["output_tokens"] == sum(x["response"]["body"]["usage"]["completion_tokens"]
                                                     for x in lines)
        listed = c.get("/batches", params={"limit": 10}).json()
        assert [b["id"] for b in listed["data"]] == [batch["id"]] and listed["has_more"] is False
    assert [b.id for b in fake.batch.created(flavor)] == [batch["id"]]
    assert len(fake.batch.created(flavor)[0].requests) == 5
    assert fake.batch.chat_requests() == 0


def test_openai_lines_out_of_order_and_per_request_errors(fake: FakeServer) -> None:
    fake.batch.shuffle = True
    fake.batch.fail_ids = {"k1": 500, "k3": 400}
    with client(fake, "openai") as c:
        batch = openai_submit(c, [openai_line("openai", k) for k in PROMPTS])
        done, _ = openai_wait(c, batch["id"])
        assert done["status"] == "completed"
        assert done["request_counts"] == {"total": 5, "completed": 3, "failed": 2}
        ok = openai_lines(c, done["output_file_id"])
        bad = openai_lines(c, done["error_file_id"])
    assert sorted(x["custom_id"] for x in ok) == ["k0", "k2", "k4"]
    assert [x["custom_id"] for x in ok] != ["k0", "k2", "k4"]  # this seed shuffles
    for line in ok:
        assert line["response"]["body"]["choices"][0]["message"]["content"] == expected("openai", line["custom_id"])
    errors = {x["custom_id"]: x["response"] for x in bad}
    assert errors["k1"]["status_code"] == 500 and errors["k3"]["status_code"] == 400
    assert errors["k1"]["body"]["error"]["type"] == "server_error"
    assert all(x["error"] is None for x in bad)


@pytest.mark.parametrize(("lines", "code"), [
    (["A", "A"], "duplicate_custom_id"),
    (["A", "B-other-model"], "model_mismatch"),
    (["A-stream"], "invalid_request"),
    (["not json"], "invalid_json_line"),
])
def test_openai_batch_fails_validation(fake: FakeServer, lines: list[str], code: str) -> None:
    def make(spec: str) -> str:
        if spec == "not json":
            return "{not json"
        line = json.loads(openai_line("openai", "k0"))
        line["custom_id"] = spec[0]
        if spec.endswith("other-model"):
            line["body"]["model"] = "gpt-4o"
        if spec.endswith("stream"):
            line["body"]["stream"] = True
        return json.dumps(line)
    with client(fake, "openai") as c:
        batch = openai_submit(c, [make(s) for s in lines])
        done, seen = openai_wait(c, batch["id"])
    assert seen == ["failed"] and done["failed_at"] is not None
    assert done["errors"]["object"] == "list"
    assert [e["code"] for e in done["errors"]["data"]] == [code]
    assert done["errors"]["data"][0]["line"] == len(lines)
    assert done["output_file_id"] is None and fake.batch.chat_requests() == 0


def test_openai_whole_batch_failure(fake: FakeServer) -> None:
    fake.batch.outcome = "failed"
    with client(fake, "openai") as c:
        done, _ = openai_wait(c, openai_submit(c, [openai_line("openai", "k0")])["id"])
    assert done["status"] == "failed" and done["errors"]["data"][0]["code"] == "token_limit_exceeded"


def test_openai_expired_delivers_finished_lines(fake: FakeServer) -> None:
    fake.batch.outcome, fake.batch.partial = "expired", 2
    with client(fake, "openai") as c:
        done, _ = openai_wait(c, openai_submit(c, [openai_line("openai", k) for k in PROMPTS])["id"])
        assert done["status"] == "expired" and done["expired_at"] is not None
        assert done["request_counts"] == {"total": 5, "completed": 2, "failed": 3}
        ok = openai_lines(c, done["output_file_id"])
        bad = openai_lines(c, done["error_file_id"])
    assert [x["custom_id"] for x in ok] == ["k0", "k1"]
    assert [(x["custom_id"], x["response"], x["error"]["code"]) for x in bad] == [
        ("k2", None, "batch_expired"), ("k3", None, "batch_expired"), ("k4", None, "batch_expired")]


def test_openai_cancel(fake: FakeServer) -> None:
    fake.batch.polls_until_done = 5
    with client(fake, "openai") as c:
        batch = openai_submit(c, [openai_line("openai", k) for k in PROMPTS])
        assert c.get(f"/batches/{batch['id']}").json()["status"] == "in_progress"
        cancelling = c.post(f"/batches/{batch['id']}/cancel").json()
        assert cancelling["status"] == "cancelling" and cancelling["cancelling_at"] is not None
        done, seen = openai_wait(c, batch["id"])
        assert seen == ["cancelling", "cancelled"] and done["cancelled_at"] is not None
        assert done["request_counts"]["completed"] == 0
        again = c.post(f"/batches/{batch['id']}/cancel")
        assert again.status_code == 409 and "cancelled" in again.json()["error"]["message"]


@pytest.mark.parametrize("flavor", ["openai", "groq"])
def test_openai_batch_needs_the_key(fake: FakeServer, flavor: str) -> None:
    for key in (None, "wrong-key"):
        with client(fake, flavor, key) as c:
            assert c.post("/files", data={"purpose": "batch"}, files={"file": ("b.jsonl", b"{}")}).status_code == 401
            assert c.get("/batches").status_code == 401
            assert c.post("/batches", json={}).status_code == 401
    assert fake.batch.created() == []


# ---------------------------------------------------------------- Anthropic Message Batches


def anthropic_request(key: str, **params: Any) -> dict[str, Any]:
    return {"custom_id": key, "params": {"model": MODEL["anthropic"], "max_tokens": 100,
                                         "messages": [{"role": "user", "content": PROMPTS[key]}], **params}}


def anthropic_wait(c: httpx.Client, batch_id: str) -> tuple[dict[str, Any], list[str]]:
    seen = []
    for _ in range(20):
        batch: dict[str, Any] = c.get(f"/v1/messages/batches/{batch_id}").json()
        seen.append(batch["processing_status"])
        if batch["processing_status"] == "ended":
            return batch, seen
    raise AssertionError(f"batch never ended: {seen}")


def anthropic_results(c: httpx.Client, batch: dict[str, Any]) -> dict[str, dict[str, Any]]:
    got = c.get(batch["results_url"])  # an absolute URL on the fake host; the client's headers still apply
    assert got.status_code == 200, got.text
    return {x["custom_id"]: x["result"] for x in map(json.loads, got.text.splitlines())}


def test_anthropic_batch_round_trip_with_errors_out_of_order(fake: FakeServer) -> None:
    fake.batch.polls_until_done, fake.batch.shuffle, fake.batch.fail_ids = 1, True, {"k2"}
    with client(fake, "anthropic") as c:
        made = c.post("/v1/messages/batches", json={"requests": [anthropic_request(k) for k in PROMPTS]})
        assert made.status_code == 200, made.text
        batch = made.json()
        assert batch["type"] == "message_batch" and batch["id"].startswith("msgbatch_")
        assert batch["processing_status"] == "in_progress" and batch["results_url"] is None
        assert batch["request_counts"]["processing"] == 5
        assert c.get(f"/v1/messages/batches/{batch['id']}/results").status_code == 400  # not ended yet
        done, seen = anthropic_wait(c, batch["id"])
        assert seen == ["in_progress", "ended"] and done["ended_at"] is not None
        assert done["request_counts"] == {"processing": 0, "succeeded": 4, "errored": 1, "canceled": 0,
                                          "expired": 0}
        raw = c.get(done["results_url"]).text
        results = anthropic_results(c, done)
        listed = c.get("/v1/messages/batches", params={"limit": 5}).json()
    assert [json.loads(x)["custom_id"] for x in raw.splitlines()] != list(PROMPTS)  # this seed shuffles
    assert set(results) == set(PROMPTS)
    for key, result in results.items():
        if key == "k2":
            assert result == {"type": "errored", "error": {"type": "error", "error": {
                "type": "api_error", "message": result["error"]["error"]["message"]}}}
            continue
        assert result["type"] == "succeeded"
        message = result["message"]
        assert message["type"] == "message" and message["content"][0]["text"] == expected("anthropic", key)
        assert message["usage"]["output_tokens"] == len(expected("anthropic", key).split())
    assert [b["id"] for b in listed["data"]] == [batch["id"]] and listed["has_more"] is False
    assert fake.batch.chat_requests() == 0


def test_anthropic_bad_params_come_back_as_errored_results(fake: FakeServer) -> None:
    bad = anthropic_request("k0")
    del bad["params"]["max_tokens"]
    with client(fake, "anthropic") as c:
        batch = c.post("/v1/messages/batches", json={"requests": [bad, anthropic_request("k1", stream=True)]}).json()
        results = anthropic_results(c, anthropic_wait(c, batch["id"])[0])
    assert results["k0"]["type"] == results["k1"]["type"] == "errored"
    assert results["k0"]["error"]["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}


@pytest.mark.parametrize("ids", [["bad id"], ["x" * 65], ["same", "same"]])
def test_anthropic_rejects_bad_custom_ids(fake: FakeServer, ids: list[str]) -> None:
    requests = [{**anthropic_request("k0"), "custom_id": i} for i in ids]
    with client(fake, "anthropic") as c:
        refused = c.post("/v1/messages/batches", json={"requests": requests})
    assert refused.status_code == 400 and refused.json()["error"]["type"] == "invalid_request_error"
    assert fake.batch.created() == []


def test_anthropic_expired_and_cancelled(fake: FakeServer) -> None:
    fake.batch.outcome, fake.batch.partial = "expired", 1
    with client(fake, "anthropic") as c:
        expired = c.post("/v1/messages/batches", json={"requests": [anthropic_request(k) for k in PROMPTS]}).json()
        done, _ = anthropic_wait(c, expired["id"])
        assert done["request_counts"]["expired"] == 4 and done["request_counts"]["succeeded"] == 1
        results = anthropic_results(c, done)
        assert results["k0"]["type"] == "succeeded"
        assert all(results[k] == {"type": "expired"} for k in ("k1", "k2", "k3", "k4"))

        fake.batch.outcome, fake.batch.partial, fake.batch.polls_until_done = "completed", 0, 5
        batch = c.post("/v1/messages/batches", json={"requests": [anthropic_request(k) for k in PROMPTS]}).json()
        canceling = c.post(f"/v1/messages/batches/{batch['id']}/cancel").json()
        assert canceling["processing_status"] == "canceling" and canceling["cancel_initiated_at"] is not None
        done, seen = anthropic_wait(c, batch["id"])
        assert seen == ["canceling", "ended"] and done["request_counts"]["canceled"] == 5
        assert set(map(str, anthropic_results(c, done).values())) == {str({"type": "canceled"})}
        listed = c.get("/v1/messages/batches", params={"limit": 1}).json()
        assert [b["id"] for b in listed["data"]] == [batch["id"]] and listed["has_more"] is True
        after = c.get("/v1/messages/batches", params={"after_id": batch["id"]}).json()
        assert [b["id"] for b in after["data"]] == [expired["id"]]


def test_anthropic_batch_needs_the_key(fake: FakeServer) -> None:
    for key in (None, "wrong-key"):
        with client(fake, "anthropic", key) as c:
            refused = c.post("/v1/messages/batches", json={"requests": [anthropic_request("k0")]})
            assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    assert fake.batch.created() == []


# ---------------------------------------------------------------- Gemini Batch Mode


def gemini_create(c: httpx.Client, keys: list[str], model: str = MODEL["gemini"]) -> httpx.Response:
    requests = [{"request": {"contents": [{"role": "user", "parts": [{"text": PROMPTS[k]}]}]}, "metadata": {"key": k}}
                for k in keys]
    return c.post(f"/models/{model}:batchGenerateContent",
                  json={"batch": {"display_name": "t", "input_config": {"requests": {"requests": requests}}}})


def gemini_wait(c: httpx.Client, name: str) -> tuple[dict[str, Any], list[str]]:
    seen = []
    for _ in range(20):
        op: dict[str, Any] = c.get(f"/{name}").json()
        seen.append(op["metadata"]["state"])
        if op.get("done"):
            return op, seen
    raise AssertionError(f"batch never finished: {seen}")


def test_gemini_batch_round_trip_in_input_order(fake: FakeServer) -> None:
    fake.batch.polls_until_done, fake.batch.shuffle, fake.batch.fail_ids = 2, True, {"k4": 400}
    with client(fake, "gemini") as c:
        made = gemini_create(c, list(PROMPTS))
        assert made.status_code == 200, made.text
        op = made.json()
        assert op["name"].startswith("batches/") and "done" not in op
        assert op["metadata"]["state"] == "BATCH_STATE_PENDING"
        assert op["metadata"]["batchStats"] == {"requestCount": "5", "pendingRequestCount": "5"}
        done, seen = gemini_wait(c, op["name"])
        listed = c.get("/batches").json()
    assert seen == ["BATCH_STATE_RUNNING", "BATCH_STATE_RUNNING", "BATCH_STATE_SUCCEEDED"]
    assert done["metadata"]["batchStats"] == {"requestCount": "5", "successfulRequestCount": "4",
                                              "failedRequestCount": "1"}
    inlined = done["response"]["inlinedResponses"]["inlinedResponses"]
    assert [x["metadata"]["key"] for x in inlined] == list(PROMPTS)  # in input order, shuffle or not
    for item in inlined[:4]:
        response = item["response"]
        assert response["candidates"][0]["content"]["parts"][0]["text"] == expected("gemini", item["metadata"]["key"])
        assert response["usageMetadata"]["candidatesTokenCount"] == len(
            expected("gemini", item["metadata"]["key"]).split())
    assert inlined[4] == {"error": {"code": 3, "message": "Invalid request."}, "metadata": {"key": "k4"}}
    assert [o["name"] for o in listed["operations"]] == [op["name"]]
    assert fake.batch.chat_requests() == 0


def test_gemini_expired_cancelled_and_failed(fake: FakeServer) -> None:
    fake.batch.outcome, fake.batch.partial = "expired", 3
    with client(fake, "gemini") as c:
        expired, _ = gemini_wait(c, gemini_create(c, list(PROMPTS)).json()["name"])
        assert expired["metadata"]["state"] == "BATCH_STATE_EXPIRED" and "response" not in expired
        fake.batch.outcome = "failed"
        failed, _ = gemini_wait(c, gemini_create(c, ["k0"]).json()["name"])
        assert failed["metadata"]["state"] == "BATCH_STATE_FAILED" and failed["error"]["code"] == 13
        fake.batch.outcome, fake.batch.polls_until_done = "completed", 5
        name = gemini_create(c, list(PROMPTS)).json()["name"]
        assert c.post(f"/{name}:cancel").json() == {}
        cancelled, seen = gemini_wait(c, name)
        assert seen[-1] == "BATCH_STATE_CANCELLED" and "response" not in cancelled
        assert c.post(f"/{name}:cancel").status_code == 400
        assert c.delete(f"/{name}").status_code == 200 and c.get(f"/{name}").status_code == 404


def gemini_upload(c: httpx.Client, fake: FakeServer, content: bytes) -> httpx.Response:
    """The File API's resumable upload as the google-genai SDK does it: start, then upload + finalize."""
    start = c.post(fake.url + "/gemini/upload/v1beta/files", headers={
        "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
        "X-Goog-Upload-Header-Content-Length": str(len(content)),
        "X-Goog-Upload-Header-Content-Type": "application/jsonl"}, json={"file": {"display_name": "requests"}})
    assert start.status_code == 200 and start.headers["x-goog-upload-status"] == "active", start.text
    return c.post(start.headers["x-goog-upload-url"], content=content, headers={
        "X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"})


def test_gemini_batch_from_an_uploaded_file_answers_in_a_file(fake: FakeServer) -> None:
    fake.batch.fail_ids = {"k4": 400}
    lines = "".join(json.dumps({"key": k, "request": {"contents": [{"role": "user", "parts": [{"text": p}]}]}}) + "\n"
                    for k, p in PROMPTS.items()).encode()
    with client(fake, "gemini") as c:
        uploaded = gemini_upload(c, fake, lines)
        assert uploaded.status_code == 200 and uploaded.headers["x-goog-upload-status"] == "final"
        file = uploaded.json()["file"]
        assert file["name"].startswith("files/") and file["sizeBytes"] == str(len(lines))
        assert (file["displayName"], file["mimeType"], file["state"]) == ("requests", "application/jsonl", "ACTIVE")
        made = c.post(f"/models/{MODEL['gemini']}:batchGenerateContent",
                      json={"batch": {"display_name": "t", "input_config": {"file_name": file["name"]}}})
        assert made.status_code == 200, made.text
        done, _ = gemini_wait(c, made.json()["name"])
        output = done["response"]["responsesFile"]
        assert "inlinedResponses" not in done["response"] and done["metadata"]["output"] == {"responsesFile": output}
        got = c.get(f"{fake.url}/gemini/download/v1beta/{output}:download", params={"alt": "media"})
    results = [json.loads(line) for line in got.content.splitlines()]
    assert [r["key"] for r in results] == list(PROMPTS)  # input order
    assert results[0]["response"]["candidates"][0]["content"]["parts"][0]["text"] == expected("gemini", "k0")
    assert results[4] == {"key": "k4", "error": {"code": 3, "message": "Invalid request."}}
    assert fake.batch.chat_requests() == 0


def test_gemini_uploads_refuse_what_the_protocol_does_not_allow(fake: FakeServer) -> None:
    with client(fake, "gemini") as c:
        plain = c.post(fake.url + "/gemini/upload/v1beta/files", content=b"{}")
        assert plain.status_code == 400
        start = c.post(fake.url + "/gemini/upload/v1beta/files", headers={
            "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": "10"}, json={"file": {}})
        short = c.post(start.headers["x-goog-upload-url"], content=b"12345",
                       headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"})
        assert short.status_code == 400 and "10 bytes" in short.json()["error"]["message"]
        missing = c.post(f"/models/{MODEL['gemini']}:batchGenerateContent",
                         json={"batch": {"display_name": "t", "input_config": {"file_name": "files/nope"}}})
        assert missing.status_code == 400
    with client(fake, "gemini", "wrong-key") as c:
        assert c.post(fake.url + "/gemini/upload/v1beta/files").status_code == 400  # the key is checked first


def test_gemini_batch_needs_the_key(fake: FakeServer) -> None:
    with client(fake, "gemini", None) as c:
        assert gemini_create(c, ["k0"]).status_code == 403
    with client(fake, "gemini", "wrong-key") as c:
        refused = gemini_create(c, ["k0"])
        assert refused.status_code == 400 and refused.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
        assert c.get("/batches").status_code == 400
    assert fake.batch.created() == []


def test_clear_resets_batches_and_controls(fake: FakeServer) -> None:
    fake.batch.polls_until_done, fake.batch.shuffle = 3, True
    with client(fake, "gemini") as c:
        gemini_create(c, ["k0"])
    fake.clear()
    assert fake.batch.created() == [] and fake.batch.polls_until_done == 0 and fake.batch.shuffle is False
