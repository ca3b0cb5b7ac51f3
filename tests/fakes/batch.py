"""The batch APIs of the fake provider server (tests/fakes/server.py delegates to this module).

Three wire protocols, each in its real shape (/work/shared/provider-facts.md, section "Batch APIs"):

* OpenAI-style, for flavors openai and groq, below the flavor's API path: ``POST /files`` (multipart,
  ``purpose=batch``, a ``.jsonl`` file), ``POST /batches``, ``GET /batches/{id}``, ``GET /batches``
  (``limit``, ``after``), ``POST /batches/{id}/cancel``, ``GET /files/{id}`` and ``/files/{id}/content``.
* Anthropic Message Batches: ``POST /v1/messages/batches``, ``GET /v1/messages/batches/{id}``,
  ``GET /v1/messages/batches`` (``limit``, ``after_id``, ``before_id``), ``POST .../{id}/cancel``,
  ``GET .../{id}/results`` (the batch's ``results_url``, JSONL).
* Gemini Batch Mode: ``POST /v1beta/models/{model}:batchGenerateContent`` with inline requests or an
  uploaded file (``input_config.file_name``), ``GET /v1beta/batches/{id}`` (a long-running operation),
  ``GET /v1beta/batches`` (``pageSize``, ``pageToken``), ``POST /v1beta/batches/{id}:cancel``,
  ``DELETE /v1beta/batches/{id}``. Its File API, beside the API: ``POST /upload/v1beta/files`` with
  Google's resumable protocol (``X-Goog-Upload-Command: start`` with the length and type in
  ``X-Goog-Upload-Header-*``, answered with an ``X-Goog-Upload-URL``; then the bytes to that URL with
  ``upload, finalize`` at offset 0, answered ``{"file": {...}}``) and ``GET
  /download/v1beta/files/{id}:download?alt=media``. A batch made from a file (JSONL lines ``{"key",
  "request"}``) answers in a file (``response.responsesFile``), one ``{"key", "response"}`` or ``{"key",
  "error"}`` line per request, in input order.

Every request of a batch is answered as the synchronous, non-streamed chat endpoint would answer its
body (the fake's own parsing and rendering), usage included; the chat endpoints themselves see none
of it (``chat_requests()`` counts what they did see). Auth is checked by the server before this
module is reached, exactly as for chat.

Controls, read when a batch is created (``FakeServer.clear()`` resets them)::

    fake.batch.polls_until_done = 2   # a batch stays in progress for 2 status polls (GET by id)
    fake.batch.shuffle = True         # OpenAI / Anthropic result lines in a seeded random order
    fake.batch.fail_ids = {"k3"}      # per request errors (or {"k3": 400}: the HTTP status to use);
                                      # Gemini requests are named by metadata["key"]
    fake.batch.outcome = "expired"    # or "failed"; default "completed"
    fake.batch.partial = 2            # requests (input order) that finished before expiry or cancel
    fake.batch.cancel_polls = 1       # polls a cancel stays in cancelling / canceling
    fake.batch.results_host = url     # the origin an Anthropic results_url names, as the public API names
                                      # its own host behind a proxy (default: this server, under /anthropic)
    fake.batch.results_error = 404    # Anthropic results downloads answer this status (an error body)

Inspection: ``fake.batch.created("openai")`` lists the batches created on a flavor (``FakeBatch``
records, oldest first, with their parsed ``requests``); ``fake.batch.chat_requests("openai")``.

Where a provider does not document a detail, the fake picks the plausible shape and says so:
an OpenAI batch cancelled before its requests ran lists them in the error file with code
``batch_cancelled``; a cancelled Gemini batch, like an expired one, has no results; a failed request
of a Gemini results file is an ``error`` (a google.rpc.Status), as inline.
"""

from __future__ import annotations

import datetime
import json
import random
import re
import time
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.server import (
    GEMINI_CHAT,
    OPENAI_API,
    answer_for,
    error_body,
    failure,
    parse_chat,
    render_answer,
)

if TYPE_CHECKING:
    from tests.fakes.server import FakeServer

ANTHROPIC_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
GEMINI_BATCH = re.compile(r"/v1beta/models/([^/:]+):batchGenerateContent")
OPENAI_ENDPOINTS = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/completions")
WINDOWS = {"openai": ("24h",), "groq": ("24h", "48h", "72h", "4d", "5d", "6d", "7d")}
# HTTP status -> google.rpc.Code, which is what an inline Gemini error carries
RPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 10, 429: 8, 500: 13, 503: 14, 504: 4}
SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
TOKEN_LIMIT = ("Enqueued token limit reached for {model} in organization org-fake. Limit: 90,000 enqueued"
               " tokens. Please try again once some in_progress batches have been completed.")


@dataclass
class BatchRequest:
    custom_id: str  # OpenAI / Anthropic custom_id; Gemini metadata["key"] (else the index)
    body: Any  # the chat request: OpenAI body, Anthropic params, Gemini GenerateContentRequest
    metadata: Any = None  # Gemini only


@dataclass
class FakeBatch:
    """One created batch and its controls, frozen when it was created."""

    id: str
    flavor: str
    requests: list[BatchRequest]
    create: dict[str, Any]  # the create request's own fields (endpoint, metadata, display_name, ...)
    created: float
    polls_until_done: int
    outcome: str
    fail_ids: dict[str, int]
    partial: int
    cancel_polls: int
    rng: random.Random | None
    model: str | None = None
    invalid: list[dict[str, Any]] = field(default_factory=list)  # OpenAI validation errors
    polls: int = 0
    in_progress_at: float | None = None
    cancel_at: float | None = None
    cancel_polls_seen: int = 0
    state: str = "running"  # running | completed | failed | expired | cancelled
    ended: float | None = None
    outputs: list[tuple[BatchRequest, str, int, Any]] = field(default_factory=list)  # (req, kind, status, body)
    output_file_id: str | None = None
    error_file_id: str | None = None

    @property
    def cancelling(self) -> bool:
        return self.cancel_at is not None and self.state == "running"


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    data: bytes
    created: float


@dataclass
class _Upload:
    """A resumable upload started (Gemini's File API), waiting for its bytes."""

    name: str
    length: int
    mime_type: str


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _jsonl(lines: list[Any], ctype: str) -> web.Response:
    return web.Response(body="".join(json.dumps(x) + "\n" for x in lines).encode(), content_type=ctype)


class BatchFake:
    """The batch endpoints of one FakeServer. Handlers run on the server's thread."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.files: dict[str, _File] = {}
        self.uploads: dict[str, _Upload] = {}
        self._displays: dict[str, str] = {}  # file name -> its display name, until its bytes come
        self.batches: dict[str, FakeBatch] = {}
        self._next = 0
        self.reset()

    def reset(self) -> None:
        self.polls_until_done = 0
        self.shuffle = False
        self.seed = 0
        self.fail_ids: set[str] | dict[str, int] = set()
        self.outcome = "completed"
        self.partial = 0
        self.cancel_polls = 1
        self.results_host: str | None = None
        self.results_error: int | None = None
        self.files.clear()
        self.uploads.clear()
        self._displays.clear()
        self.batches.clear()

    # ------------------------------------------------------------ inspection

    def created(self, flavor: str | None = None) -> list[FakeBatch]:
        return [b for b in list(self.batches.values()) if flavor in (None, b.flavor)]

    def chat_requests(self, flavor: str | None = None) -> int:
        return sum(1 for r in list(self.server.requests) if r.chat and flavor in (None, r.flavor))

    # ------------------------------------------------------------ routing

    def handle(self, flavor: str, request: web.Request, real: str, body: Any, raw: bytes) -> web.Response | None:
        """The answer to a batch request, or None when the path is not a batch path."""
        method = request.method
        if flavor in ("openai", "groq") and real.startswith(OPENAI_API[flavor] + "/"):
            parts = real.removeprefix(OPENAI_API[flavor] + "/").split("/")
            if parts[0] == "files":
                if method == "POST" and len(parts) == 1:
                    return self._openai_upload(flavor, request, raw)
                if method == "GET" and len(parts) in (2, 3) and parts[2:] in ([], ["content"]):
                    return self._openai_file(flavor, parts[1], content=len(parts) == 3)
            if parts[0] == "batches":
                if method == "POST" and len(parts) == 1:
                    return self._openai_create(flavor, body)
                if method == "GET" and len(parts) == 1:
                    return self._openai_list(flavor, request.query)
                if method == "GET" and len(parts) == 2:
                    return self._openai_get(flavor, parts[1])
                if method == "POST" and len(parts) == 3 and parts[2] == "cancel":
                    return self._openai_cancel(flavor, parts[1])
            return None
        if flavor == "anthropic" and real.startswith("/v1/messages/batches"):
            parts = real.removeprefix("/v1/messages/batches").strip("/").split("/")
            if parts == [""]:
                if method == "POST":
                    return self._anthropic_create(body)
                if method == "GET":
                    return self._anthropic_list(request.query)
            elif method == "GET" and len(parts) == 1:
                return self._anthropic_get(parts[0])
            elif method == "POST" and parts[1:] == ["cancel"]:
                return self._anthropic_cancel(parts[0])
            elif method == "GET" and parts[1:] == ["results"]:
                return self._anthropic_results(parts[0])
            return None
        if flavor == "gemini":
            if real == "/upload/v1beta/files" and method == "POST":
                return self._gemini_upload(request, raw)
            if real.startswith("/download/v1beta/files/") and method == "GET":
                return self._gemini_download(real.removeprefix("/download/v1beta/"), request.query)
            create = GEMINI_BATCH.fullmatch(real)
            if create and method == "POST":
                return self._gemini_create(create.group(1), body)
            if real == "/v1beta/batches" and method == "GET":
                return self._gemini_list(request.query)
            if real.startswith("/v1beta/batches/"):
                name, _, verb = real.removeprefix("/v1beta/").partition(":")
                if method == "GET" and not verb:
                    return self._gemini_get(name)
                if method == "POST" and verb == "cancel":
                    return self._gemini_cancel(name)
                if method == "DELETE" and not verb:
                    return self._gemini_delete(name)
        return None

    # ------------------------------------------------------------ shared machinery

    def _new_id(self, prefix: str) -> str:
        self._next += 1
        return f"{prefix}{self._next:06d}fake"

    def _new_batch(self, flavor: str, prefix: str, requests: list[BatchRequest], create: dict[str, Any],
                   model: str | None = None) -> FakeBatch:
        fail = self.fail_ids if isinstance(self.fail_ids, dict) else dict.fromkeys(self.fail_ids, 500)
        batch = FakeBatch(self._new_id(prefix), flavor, requests, create, time.time(), self.polls_until_done,
                          self.outcome, dict(fail), self.partial, self.cancel_polls,
                          # Seeded by the batch's place in this test (batches are cleared by reset), not by the
                          # session's id counter: the order does not depend on which tests ran before.
                          random.Random(self.seed + len(self.batches)) if self.shuffle else None, model)
        self.batches[batch.id] = batch
        return batch

    def _advance(self, batch: FakeBatch) -> None:
        """One status poll: the batch moves on, and ends when its polls are used up."""
        if batch.state != "running":
            return
        batch.polls += 1
        if batch.in_progress_at is None:
            batch.in_progress_at = time.time()
        if batch.invalid:
            self._end(batch, "failed")
        elif batch.cancel_at is not None:
            batch.cancel_polls_seen += 1
            if batch.cancel_polls_seen > batch.cancel_polls:
                self._end(batch, "cancelled")
        elif batch.polls > batch.polls_until_done:
            self._end(batch, batch.outcome)

    def _end(self, batch: FakeBatch, state: str) -> None:
        batch.state, batch.ended = state, time.time()
        if state == "failed":
            return
        done = len(batch.requests) if state == "completed" else batch.partial
        for i, req in enumerate(batch.requests):
            if i >= done:
                batch.outputs.append((req, state, 0, None))
            else:
                status, body = self._run(batch, req)
                batch.outputs.append((req, "ok" if status == 200 else "error", status, body))
        if batch.flavor in ("openai", "groq"):
            self._openai_files(batch)
        elif batch.create.get("fileName") and state == "completed":
            self._gemini_results_file(batch)

    def _run(self, batch: FakeBatch, req: BatchRequest) -> tuple[int, Any]:
        """What the synchronous chat endpoint would answer: (HTTP status, JSON body)."""
        flavor = batch.flavor
        failing = next((i for i in (req.custom_id, req.custom_id.partition("_")[2]) if i in batch.fail_ids), None)
        if failing is not None:  # named by its custom id, or (Anthropic) the part after the client's "<tag>_"
            status = batch.fail_ids[failing]
            return status, error_body(flavor, status, SERVER_ERROR if status >= 500 else "Invalid request.")
        if not isinstance(req.body, dict):
            return 400, error_body(flavor, 400, "The request body is not a JSON object.")
        if flavor == "anthropic" and req.body.get("stream"):
            return 400, error_body(flavor, 400, "stream: Streaming is not supported in the Message Batches API.")
        gemini = GEMINI_CHAT.fullmatch(f"/v1beta/models/{batch.model}:generateContent") if batch.model else None
        chat = parse_chat(flavor, req.body, gemini)
        if isinstance(chat, str):
            return 400, error_body(flavor, 400, chat)
        if chat.model.startswith("missing"):
            return 404, error_body(flavor, 404, f"The model `{chat.model}` does not exist.")
        chat.stream = False
        return 200, render_answer(flavor, chat, answer_for(chat), self.server.price)[0]

    def _ordered(self, batch: FakeBatch, items: list[Any]) -> list[Any]:
        if batch.rng is None:
            return items
        items = list(items)
        batch.rng.shuffle(items)
        return items

    # ------------------------------------------------------------ OpenAI-style (openai, groq)

    def _openai_upload(self, flavor: str, request: web.Request, raw: bytes) -> web.Response:
        ctype = request.headers.get("Content-Type", "")
        if not ctype.startswith("multipart/form-data"):
            return failure(flavor, 400, "Invalid file format. Expected multipart/form-data.")
        message = BytesParser(policy=policy.HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + raw)
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(data, bytes):
                fields[name] = (part.get_filename(), data)
        purpose = fields.get("purpose", (None, b""))[1].decode()
        if "file" not in fields:
            return failure(flavor, 400, "Missing required parameter: 'file'.", code="missing_required_parameter")
        if purpose != "batch":
            return failure(flavor, 400, f"'{purpose}' is not one of ['assistants', 'batch', 'fine-tune', 'vision',"
                          " 'user_data'] - 'purpose'")
        filename, data = fields["file"]
        file = _File(self._new_id("file-"), filename or "upload.jsonl", purpose, data, time.time())
        self.files[file.id] = file
        return _json(self._file_object(file))

    @staticmethod
    def _file_object(file: _File) -> dict[str, Any]:
        return {"id": file.id, "object": "file", "bytes": len(file.data), "created_at": int(file.created),
                "filename": file.filename, "purpose": file.purpose, "status": "processed",
                "expires_at": None, "status_details": None}

    def _openai_file(self, flavor: str, file_id: str, *, content: bool) -> web.Response:
        file = self.files.get(file_id)
        if file is None:
            return failure(flavor, 404, f"No such File object: {file_id}")
        if content:
            return web.Response(body=file.data, content_type="application/octet-stream")
        return _json(self._file_object(file))

    def _openai_create(self, flavor: str, body: Any) -> web.Response:
        if not isinstance(body, dict):
            return failure(flavor, 400, "We could not parse the JSON body of your request.")
        for name in ("input_file_id", "endpoint", "completion_window"):
            if not isinstance(body.get(name), str):
                return failure(flavor, 400, f"Missing required parameter: '{name}'.",
                              code="missing_required_parameter")
        if body["endpoint"] not in OPENAI_ENDPOINTS:
            return failure(flavor, 400, f"Invalid value: '{body['endpoint']}'. Supported values are: "
                          + ", ".join(f"'{e}'" for e in OPENAI_ENDPOINTS) + ".", code="invalid_value")
        if body["completion_window"] not in WINDOWS[flavor]:
            return failure(flavor, 400, f"Invalid value: '{body['completion_window']}'. Supported values are: "
                          + ", ".join(f"'{w}'" for w in WINDOWS[flavor]) + ".", code="invalid_value")
        metadata = body.get("metadata")
        if metadata is not None and (not isinstance(metadata, dict) or len(metadata) > 16 or not all(
                isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512
                for k, v in metadata.items())):
            return failure(flavor, 400, "Invalid 'metadata': at most 16 pairs of strings (keys up to 64,"
                          " values up to 512 characters).", code="invalid_value")
        file = self.files.get(body["input_file_id"])
        if file is None or file.purpose != "batch":
            return failure(flavor, 404, f"No such File object: {body['input_file_id']}")
        requests, invalid, models = self._openai_lines(file.data, body["endpoint"])
        batch = self._new_batch(flavor, "batch_", requests, body, models[0] if models else None)
        batch.invalid = invalid
        return _json(self._openai_object(batch))

    @staticmethod
    def _openai_lines(data: bytes, endpoint: str) -> tuple[list[BatchRequest], list[dict[str, Any]], list[str]]:
        """The requests of an input file, the errors that fail its validation, and its models."""
        requests: list[BatchRequest] = []
        errors: list[dict[str, Any]] = []
        models: list[str] = []

        def bad(code: str, line: int | None, message: str, param: str | None = None) -> None:
            errors.append({"code": code, "line": line, "message": message, "param": param})
        lines = [(n, text) for n, text in enumerate(data.decode("utf-8", "replace").splitlines(), 1) if text.strip()]
        if not lines:
            bad("empty_file", None, "The batch input file is empty.")
        if len(lines) > 50_000:
            bad("too_many_tasks", None, "The batch input file has more than 50,000 requests.")
        seen: set[str] = set()
        for n, text in lines:
            try:
                line = json.loads(text)
            except ValueError:
                line = None
            if not isinstance(line, dict) or not isinstance(line.get("body"), dict):
                bad("invalid_json_line", n, "This line is not parseable as valid JSON.")
                continue
            cid, line_body = line.get("custom_id"), line["body"]
            if not isinstance(cid, str) or not cid:
                bad("missing_required_parameter", n, "Missing required parameter: 'custom_id'.", "custom_id")
                continue
            if cid in seen:
                bad("duplicate_custom_id", n, "The custom_id for this request is a duplicate of another request."
                    " The custom_id parameter must be unique for each request in a batch.", "custom_id")
            seen.add(cid)
            if line.get("method") != "POST":
                bad("invalid_method", n, "The method for this request must be 'POST'.", "method")
            if line.get("url") != endpoint:
                bad("url_mismatch", n, "The provided URL does not match the endpoint specified for the batch"
                    f" ('{endpoint}').", "url")
            model = line_body.get("model")
            if not isinstance(model, str):
                bad("missing_required_parameter", n, "Missing required parameter: 'body.model'.", "body.model")
            elif models and model != models[0]:
                bad("model_mismatch", n, f"The provided model '{model}' does not match the model '{models[0]}'"
                    " used by the other requests in the batch. A batch must use one model.", "body.model")
            elif not models:
                models.append(model)
            if "stream" in line_body:
                bad("invalid_request", n, "Streaming is not supported by the Batch API: remove 'stream'.",
                    "body.stream")
            requests.append(BatchRequest(cid, line_body))
        return requests, errors, models

    def _openai_files(self, batch: FakeBatch) -> None:
        ok: list[Any] = []
        failed: list[Any] = []
        for n, (req, kind, status, body) in enumerate(batch.outputs):
            line: dict[str, Any] = {"id": f"batch_req_{batch.id[6:]}{n:05d}", "custom_id": req.custom_id,
                                    "response": None, "error": None}
            if kind in ("ok", "error"):
                line["response"] = {"status_code": status, "request_id": f"req_fake{n:06d}", "body": body}
            else:
                code = "batch_expired" if kind == "expired" else "batch_cancelled"
                why = "expired" if kind == "expired" else "was cancelled"
                line["error"] = {"code": code, "message": f"This request could not be executed before the batch"
                                 f" {why}."}
            (ok if kind == "ok" else failed).append(line)
        for lines, attr, suffix in ((ok, "output_file_id", "output"), (failed, "error_file_id", "errors")):
            if lines:
                data = "".join(json.dumps(x) + "\n" for x in self._ordered(batch, lines)).encode()
                file = _File(self._new_id("file-"), f"{batch.id}_{suffix}.jsonl", "batch_output", data, time.time())
                self.files[file.id] = file
                setattr(batch, attr, file.id)

    def _openai_object(self, batch: FakeBatch) -> dict[str, Any]:
        ended = int(batch.ended) if batch.ended is not None else None
        status = {"running": "validating" if batch.in_progress_at is None else "in_progress"}.get(
            batch.state, batch.state)
        if batch.cancelling:
            status = "cancelling"
        oks = sum(1 for o in batch.outputs if o[1] == "ok")
        obj: dict[str, Any] = {
            "id": batch.id, "object": "batch", "endpoint": batch.create["endpoint"],
            "model": batch.model if batch.in_progress_at is not None else None,
            "errors": None, "input_file_id": batch.create["input_file_id"],
            "completion_window": batch.create["completion_window"], "status": status,
            "output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id,
            "created_at": int(batch.created),
            "in_progress_at": int(batch.in_progress_at) if batch.in_progress_at and not batch.invalid else None,
            "expires_at": int(batch.created) + 86400,
            "finalizing_at": ended if batch.state in ("completed", "expired") else None,
            "completed_at": ended if batch.state == "completed" else None,
            "failed_at": ended if batch.state == "failed" else None,
            "expired_at": ended if batch.state == "expired" else None,
            "cancelling_at": int(batch.cancel_at) if batch.cancel_at else None,
            "cancelled_at": ended if batch.state == "cancelled" else None,
            "request_counts": {"total": len(batch.requests) if not batch.invalid else 0, "completed": oks,
                               "failed": len(batch.outputs) - oks},
            "metadata": batch.create.get("metadata"),
        }
        if batch.state == "failed":
            data = batch.invalid or [{"code": "token_limit_exceeded", "line": None, "param": None,
                                      "message": TOKEN_LIMIT.format(model=batch.model)}]
            obj["errors"] = {"object": "list", "data": data}
        if batch.outputs:
            tokens = [self._tokens(batch.flavor, o[3]) for o in batch.outputs if o[1] == "ok"]
            inp, out = sum(t[0] for t in tokens), sum(t[1] for t in tokens)
            obj["usage"] = {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out,
                            "input_tokens_details": {"cached_tokens": 0},
                            "output_tokens_details": {"reasoning_tokens": 0}}
        return obj

    @staticmethod
    def _tokens(flavor: str, body: Any) -> tuple[int, int]:
        if flavor == "anthropic":
            return body["usage"]["input_tokens"], body["usage"]["output_tokens"]
        if flavor == "gemini":
            meta = body["usageMetadata"]
            return meta["promptTokenCount"], meta["candidatesTokenCount"]
        return body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]

    def _openai_batch(self, flavor: str, batch_id: str) -> FakeBatch | web.Response:
        batch = self.batches.get(batch_id)
        if batch is None or batch.flavor != flavor:
            return failure(flavor, 404, f"No batch found with id '{batch_id}'.")
        return batch

    def _openai_get(self, flavor: str, batch_id: str) -> web.Response:
        batch = self._openai_batch(flavor, batch_id)
        if isinstance(batch, web.Response):
            return batch
        self._advance(batch)
        return _json(self._openai_object(batch))

    def _openai_cancel(self, flavor: str, batch_id: str) -> web.Response:
        batch = self._openai_batch(flavor, batch_id)
        if isinstance(batch, web.Response):
            return batch
        if batch.state != "running":
            return failure(flavor, 409, f"Cannot cancel a batch with status '{batch.state}'.")
        if batch.cancel_at is None:
            batch.cancel_at = time.time()
        return _json(self._openai_object(batch))

    def _openai_list(self, flavor: str, query: Any) -> web.Response:
        ids = [b.id for b in reversed(self.created(flavor))]  # newest first
        start = ids.index(query["after"]) + 1 if query.get("after") in ids else 0
        page = ids[start:start + int(query.get("limit", 20))]
        return _json({"object": "list", "data": [self._openai_object(self.batches[i]) for i in page],
                      "first_id": page[0] if page else None, "last_id": page[-1] if page else None,
                      "has_more": start + len(page) < len(ids)})

    # ------------------------------------------------------------ Anthropic Message Batches

    def _anthropic_create(self, body: Any) -> web.Response:
        flavor = "anthropic"
        if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
            return failure(flavor, 400, "requests: Field required")
        if not 1 <= len(body["requests"]) <= 100_000:
            return failure(flavor, 400, "requests: List should have at least 1 item and at most 100000 items")
        requests: list[BatchRequest] = []
        seen: set[str] = set()
        for n, item in enumerate(body["requests"]):
            if not isinstance(item, dict) or not isinstance(item.get("params"), dict):
                return failure(flavor, 400, f"requests.{n}.params: Field required")
            cid = item.get("custom_id")
            if not isinstance(cid, str) or not ANTHROPIC_ID.fullmatch(cid):
                return failure(flavor, 400, f"requests.{n}.custom_id: String should match pattern"
                              " '^[a-zA-Z0-9_-]{1,64}$'")
            if cid in seen:
                return failure(flavor, 400, f"Duplicate custom_id '{cid}': each request in a batch needs a unique"
                              " custom_id.")
            seen.add(cid)
            requests.append(BatchRequest(cid, item["params"]))
        batch = self._new_batch(flavor, "msgbatch_", requests, {k: v for k, v in body.items() if k != "requests"})
        return _json(self._anthropic_object(batch))

    def _anthropic_object(self, batch: FakeBatch) -> dict[str, Any]:
        counts = dict.fromkeys(("processing", "succeeded", "errored", "canceled", "expired"), 0)
        if batch.state == "running":
            counts["processing"] = len(batch.requests)
        for _, kind, _, _ in batch.outputs:
            counts[{"ok": "succeeded", "error": "errored", "cancelled": "canceled"}.get(kind, kind)] += 1
        ended = batch.state != "running"
        return {"id": batch.id, "type": "message_batch",
                "processing_status": "ended" if ended else "canceling" if batch.cancelling else "in_progress",
                "request_counts": counts, "created_at": _iso(batch.created), "ended_at": _iso(batch.ended),
                "expires_at": _iso(batch.created + 86400), "archived_at": None,
                "cancel_initiated_at": _iso(batch.cancel_at),
                "results_url": f"{self.results_host or self.server.url + '/anthropic'}/v1/messages/batches/"
                               f"{batch.id}/results" if ended else None}

    def _anthropic_batch(self, batch_id: str) -> FakeBatch | web.Response:
        batch = self.batches.get(batch_id)
        if batch is None or batch.flavor != "anthropic":
            return failure("anthropic", 404, f"Message batch {batch_id} not found.")
        return batch

    def _anthropic_get(self, batch_id: str) -> web.Response:
        batch = self._anthropic_batch(batch_id)
        if isinstance(batch, web.Response):
            return batch
        self._advance(batch)
        return _json(self._anthropic_object(batch))

    def _anthropic_cancel(self, batch_id: str) -> web.Response:
        batch = self._anthropic_batch(batch_id)
        if isinstance(batch, web.Response):
            return batch
        if batch.state == "running" and batch.cancel_at is None:
            batch.cancel_at = time.time()
        return _json(self._anthropic_object(batch))

    def _anthropic_results(self, batch_id: str) -> web.Response:
        batch = self._anthropic_batch(batch_id)
        if isinstance(batch, web.Response):
            return batch
        if batch.state == "running":
            return failure("anthropic", 400, f"Message batch {batch_id} has not ended: its results are not yet"
                          " available.")
        if self.results_error is not None:
            return failure("anthropic", self.results_error, f"Results for message batch {batch_id} are not"
                          " available.")
        lines: list[Any] = []
        for req, kind, _, body in batch.outputs:
            result: dict[str, Any]
            if kind == "ok":
                result = {"type": "succeeded", "message": body}
            elif kind == "error":
                result = {"type": "errored", "error": {"type": "error", "error": body["error"]}}
            else:
                result = {"type": "canceled" if kind == "cancelled" else "expired"}
            lines.append({"custom_id": req.custom_id, "result": result})
        return _jsonl(self._ordered(batch, lines), "application/binary")

    def _anthropic_list(self, query: Any) -> web.Response:
        ids = [b.id for b in reversed(self.created("anthropic"))]  # newest first
        start = ids.index(query["after_id"]) + 1 if query.get("after_id") in ids else 0
        end = ids.index(query["before_id"]) if query.get("before_id") in ids else len(ids)
        page = ids[start:end][: int(query.get("limit", 20))]
        return _json({"data": [self._anthropic_object(self.batches[i]) for i in page],
                      "has_more": start + len(page) < end, "first_id": page[0] if page else None,
                      "last_id": page[-1] if page else None})

    # ------------------------------------------------------------ Gemini Batch Mode

    def _gemini_create(self, model: str, body: Any) -> web.Response:
        flavor = "gemini"
        if model.startswith("missing"):
            return failure(flavor, 404, f"models/{model} is not found for API version v1beta, or is not supported"
                          " for batchGenerateContent.")
        batch_spec = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(batch_spec, dict):
            return failure(flavor, 400, "* BatchGenerateContentRequest.batch: batch is required")
        config = batch_spec.get("inputConfig", batch_spec.get("input_config"))
        file_name = config.get("fileName", config.get("file_name")) if isinstance(config, dict) else None
        holder = config.get("requests") if isinstance(config, dict) else None
        items = holder.get("requests") if isinstance(holder, dict) else None
        create = {"displayName": batch_spec.get("displayName", batch_spec.get("display_name"))}
        if file_name is not None:
            file = self.files.get(file_name) if isinstance(file_name, str) else None
            if file is None:
                return failure(flavor, 400, f"* BatchGenerateContentRequest.batch.input_config.file_name: "
                              f"file {file_name} not found")
            requests: list[BatchRequest] = []
            for n, text in enumerate(file.data.decode().splitlines()):
                line = json.loads(text) if text.strip() else None
                if not isinstance(line, dict) or not isinstance(line.get("request"), dict):
                    return failure(flavor, 400, f"The input file {file_name} is invalid: line {n + 1} has no request")
                key = line.get("key")
                requests.append(BatchRequest(key if isinstance(key, str) else str(n), line["request"]))
            batch = self._new_batch(flavor, "batches/", requests, {**create, "fileName": file_name}, model)
            return _json(self._gemini_operation(batch))
        if not isinstance(items, list) or not items:
            return failure(flavor, 400, "* BatchGenerateContentRequest.batch.input_config: requests are required"
                          " (inline requests or a file name)")
        requests: list[BatchRequest] = []
        for n, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
                return failure(flavor, 400, f"* BatchGenerateContentRequest.batch.input_config.requests.requests[{n}]"
                              ".request: request is required")
            meta = item.get("metadata")
            key = meta.get("key") if isinstance(meta, dict) else None
            requests.append(BatchRequest(key if isinstance(key, str) else str(n), item["request"], meta))
        batch = self._new_batch(flavor, "batches/", requests, create, model)
        return _json(self._gemini_operation(batch))

    def _gemini_upload(self, request: web.Request, raw: bytes) -> web.Response:
        """The File API's resumable upload: ``start`` (metadata), then the bytes with ``upload, finalize``."""
        headers, flavor = request.headers, "gemini"
        command = {c.strip() for c in headers.get("x-goog-upload-command", "").lower().split(",")}
        upload_id = request.query.get("upload_id")
        if upload_id is None:
            if headers.get("x-goog-upload-protocol", "").lower() != "resumable" or command != {"start"}:
                return failure(flavor, 400, "Upload requests need X-Goog-Upload-Protocol: resumable and "
                              "X-Goog-Upload-Command: start")
            length = headers.get("x-goog-upload-header-content-length", "")
            if not length.isdigit():
                return failure(flavor, 400, "X-Goog-Upload-Header-Content-Length is required")
            spec = json.loads(raw).get("file") if raw else None
            display = (spec.get("display_name") or spec.get("displayName")) if isinstance(spec, dict) else None
            upload = _Upload(self._new_id("files/"), int(length),
                             headers.get("x-goog-upload-header-content-type", "application/octet-stream"))
            self.uploads[upload_id := self._new_id("upload-")] = upload
            self._displays[upload.name] = display or upload.name
            url = f"{self.server.url}/gemini/upload/v1beta/files?upload_id={upload_id}&upload_protocol=resumable"
            return web.Response(status=200, headers={
                "X-Goog-Upload-Status": "active", "X-Goog-Upload-URL": url, "X-Goog-Upload-Control-URL": url,
                "X-Goog-Upload-Chunk-Granularity": "8388608"})
        started = self.uploads.get(upload_id)
        if started is None:
            return failure(flavor, 404, f"Upload {upload_id} not found.")
        if command != {"upload", "finalize"} or headers.get("x-goog-upload-offset") != "0" \
                or len(raw) != started.length:
            return failure(flavor, 400, f"Expected the whole file ({started.length} bytes) at offset 0 with "
                          f"X-Goog-Upload-Command: upload, finalize; got {len(raw)} bytes")
        del self.uploads[upload_id]
        now = time.time()
        self.files[started.name] = _File(started.name, self._displays.pop(started.name), "batch", raw, now)
        return web.json_response({"file": self._gemini_file(self.files[started.name], started.mime_type)},
                                 headers={"X-Goog-Upload-Status": "final"})

    @staticmethod
    def _gemini_file(file: _File, mime_type: str) -> dict[str, Any]:
        return {"name": file.id, "displayName": file.filename, "mimeType": mime_type,
                "sizeBytes": str(len(file.data)), "createTime": _iso(file.created), "updateTime": _iso(file.created),
                "expirationTime": _iso(file.created + 48 * 3600), "uri": f"/v1beta/{file.id}", "state": "ACTIVE",
                "source": "UPLOADED"}

    def _gemini_download(self, target: str, query: Any) -> web.Response:
        name, _, verb = target.partition(":")
        file = self.files.get(name)
        if verb != "download" or query.get("alt") != "media" or file is None:
            return failure("gemini", 404, f"File {name} not found.")
        return web.Response(body=file.data, content_type="application/octet-stream")

    def _gemini_results_file(self, batch: FakeBatch) -> None:
        lines = []
        for req, kind, status, body in batch.outputs:  # input order, always
            lines.append({"key": req.custom_id, "response": body} if kind == "ok" else {
                "key": req.custom_id, "error": {"code": RPC_CODES.get(status, 2), "message": body["error"]["message"]}})
        name = self._new_id("files/batch-")
        self.files[name] = _File(name, f"{batch.id}-responses", "batch_output",
                                 "".join(json.dumps(x) + "\n" for x in lines).encode(), time.time())
        batch.output_file_id = name

    def _gemini_operation(self, batch: FakeBatch) -> dict[str, Any]:
        state = {"running": "BATCH_STATE_RUNNING" if batch.polls else "BATCH_STATE_PENDING",
                 "completed": "BATCH_STATE_SUCCEEDED", "failed": "BATCH_STATE_FAILED",
                 "expired": "BATCH_STATE_EXPIRED", "cancelled": "BATCH_STATE_CANCELLED"}[batch.state]
        total = len(batch.requests)
        stats = {"requestCount": str(total)}
        if batch.state == "running":
            stats["pendingRequestCount"] = str(total)
        else:
            oks = sum(1 for o in batch.outputs if o[1] == "ok")
            stats.update(successfulRequestCount=str(oks), failedRequestCount=str(total - oks))
        updated = batch.ended or batch.in_progress_at or batch.created
        metadata: dict[str, Any] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "model": f"models/{batch.model}", "displayName": batch.create.get("displayName") or "",
            "createTime": _iso(batch.created), "updateTime": _iso(updated), "batchStats": stats,
            "state": state, "name": batch.id}
        if batch.ended is not None:
            metadata["endTime"] = _iso(batch.ended)
        op: dict[str, Any] = {"name": batch.id, "metadata": metadata}
        if batch.state == "running":
            return op
        op["done"] = True
        if batch.state == "completed" and batch.output_file_id is not None:
            output: dict[str, Any] = {"responsesFile": batch.output_file_id}
            metadata["output"] = output
            op["response"] = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1main."
                                       "GenerateContentBatchOutput", **output}
        elif batch.state == "completed":
            inlined = []
            for req, kind, status, body in batch.outputs:  # input order, always
                entry: dict[str, Any] = {"response": body} if kind == "ok" else {
                    "error": {"code": RPC_CODES.get(status, 2), "message": body["error"]["message"]}}
                if req.metadata is not None:
                    entry["metadata"] = req.metadata
                inlined.append(entry)
            output = {"inlinedResponses": {"inlinedResponses": inlined}}
            metadata["output"] = output
            op["response"] = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1main."
                                       "GenerateContentBatchOutput", **output}
        elif batch.state == "failed":
            op["error"] = {"code": 13, "message": "The batch failed: internal error while processing it."}
        return op

    def _gemini_batch(self, name: str) -> FakeBatch | web.Response:
        batch = self.batches.get(name)
        if batch is None or batch.flavor != "gemini":
            return failure("gemini", 404, f"Batch {name} not found.")
        return batch

    def _gemini_get(self, name: str) -> web.Response:
        batch = self._gemini_batch(name)
        if isinstance(batch, web.Response):
            return batch
        self._advance(batch)
        return _json(self._gemini_operation(batch))

    def _gemini_cancel(self, name: str) -> web.Response:
        batch = self._gemini_batch(name)
        if isinstance(batch, web.Response):
            return batch
        if batch.state != "running":
            return failure("gemini", 400, f"Batch {name} is already in a terminal state and cannot be cancelled.",
                          etype="FAILED_PRECONDITION")
        if batch.cancel_at is None:
            batch.cancel_at = time.time()
            batch.partial = 0  # a cancelled Gemini batch has no results
        return _json({})

    def _gemini_delete(self, name: str) -> web.Response:
        batch = self._gemini_batch(name)
        if isinstance(batch, web.Response):
            return batch
        del self.batches[name]
        return _json({})

    def _gemini_list(self, query: Any) -> web.Response:
        ids = [b.id for b in reversed(self.created("gemini"))]
        start, size = int(query.get("pageToken") or 0), int(query.get("pageSize") or 50)
        result: dict[str, Any] = {"operations": [self._gemini_operation(self.batches[i])
                                                 for i in ids[start:start + size]]}
        if start + size < len(ids):
            result["nextPageToken"] = str(start + size)
        return _json(result)
