"""The ChatRequest for one work item: its messages and params, plus what it asks beyond text."""

from __future__ import annotations

from ..config.jobs import WorkItem
from ..config.media import limit_for
from ..config.providers import Provider
from ..protocols import ChatRequest


def chat_request(item: WorkItem, stream: bool, provider: Provider) -> ChatRequest:
    target = item.target
    if not item.prompt.rich and item.response is None and item.tools is None:
        return ChatRequest(target.model, item.messages, target.params, stream)
    return ChatRequest(target.model, item.messages, target.params, stream, item.response, item.tools,
                       item.prompt.rich, limit_for(provider.protocol, provider.max_image_bytes))
