"""One line of a batch's results as what a synchronous request would have ended with: pure, no I/O.

The answer is read by the same function as a synchronous answer (``http.client.read_answer``); an
error line is classified by the protocol like an HTTP error answer.
"""

from __future__ import annotations

import datetime

from ..config.providers import Provider
from ..errors import ErrorCode, ProviderError
from ..http.client import Answer, read_answer
from ..protocols import Adapter
from ..protocols.batch import BatchLine, BatchStatus


def line_outcome(line: BatchLine, adapter: Adapter, provider: Provider, status: BatchStatus, cancel_asked: bool,
                 times_sent: int) -> Answer | ProviderError | None:
    """The line as an answer or an error; None when the request is to be sent again (it expired, or the
    provider cancelled it, and the retry settings allow another send)."""
    provider_id = provider.id
    if line.kind == "ok":
        try:
            return read_answer(adapter, provider.protocol, line.body, line.status or 200, 0.0)
        except ProviderError as error:
            error.provider = provider_id
            return error
    if line.kind == "error":
        if status.state == "failed" and line.body is None:
            return ProviderError(ErrorCode.REQUEST_FAILED, f"the batch {status.batch_id} failed: "
                                 f"{status.message or status.provider_status}", None, provider_id)
        if line.body is None:
            return ProviderError(ErrorCode.INVALID_RESPONSE, f"the batch {status.batch_id} ended without a "
                                 "result for this request", None, provider_id)
        info = adapter.error_info(line.body)
        if line.status is None:
            return ProviderError(ErrorCode.REQUEST_FAILED, info.message, None, provider_id)
        code = adapter.classify(line.status, info)
        return ProviderError(code, f"HTTP {line.status}: {info.message or 'error'}", line.status, provider_id)
    if line.kind == "cancelled" and cancel_asked:
        return ProviderError(ErrorCode.CANCELLED, f"the batch {status.batch_id} was cancelled before this "
                             "request ran", None, provider_id)
    # Expired (or cancelled by the provider): sent again while the retry settings allow.
    if times_sent <= provider.retry.max_retries:
        return None
    what = "expired" if line.kind == "expired" else "was cancelled"
    code = ErrorCode.TIMEOUT if line.kind == "expired" else ErrorCode.CANCELLED
    return ProviderError(code, f"the batch {status.batch_id} {what} before this request ran "
                         f"(sent {times_sent} times by batch)", None, provider_id)


def unix_time(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
