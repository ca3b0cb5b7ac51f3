"""The project's fake providers, on 127.0.0.1: real HTTP in each provider's real wire format, with
injectable faults. Tests use the ``fake`` fixture (tests/conftest.py) or these names, nothing else.

- ``FakeServer`` (server.py): every protocol's chat, streaming, model listing and key checks, faults
  by ``fake.fail(...)``, scripted replies by ``fake.add_reply(...)``; ``fake.batch`` is the batch APIs
  (batch.py); ``asks.py`` is how it answers the questions jobs ask.
- ``CannedServer`` (canned.py): one canned response to every request, for malformed servers.
"""

from tests.fakes.canned import CannedServer
from tests.fakes.server import FAULT_KINDS, FLAVORS, GEMINI_BAD_KEY, OPENAI_API, FakeServer, Recorded, error_body

__all__ = ["FAULT_KINDS", "FLAVORS", "GEMINI_BAD_KEY", "OPENAI_API", "CannedServer", "FakeServer", "Recorded",
           "error_body"]
