"""The pooled transport's TLS: every provider's pool verifies certificates, with settings loaded once."""

from __future__ import annotations

import ssl

from runner.http.transport import pooled_transport


def test_every_pool_verifies_certificates_with_one_shared_context() -> None:
    first, second = pooled_transport(4), pooled_transport(64)
    assert first.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert first.ssl_context.check_hostname
    assert first.ssl_context is second.ssl_context  # loading certificates cost 20 ms per provider
