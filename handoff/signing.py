"""HMAC-SHA256 signing of handoff requests, both directions (see docs/HANDOFF_CONTRACT.md).

Signature: ``sha256=`` + hex HMAC-SHA256 with the shared secret over ``<timestamp>.<raw body>``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Handoff-Timestamp"
SIGNATURE_HEADER = "X-Handoff-Signature"
DELIVERY_HEADER = "X-Handoff-Delivery"
SIGNATURE_PREFIX = "sha256="


class SignatureError(ValueError):
    """A request's signature or timestamp is missing, malformed, wrong or outside the window."""


def compute_signature(secret: str, timestamp: str | int, body: bytes) -> str:
    """Return ``sha256=<hex>`` for ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def sign_headers(secret: str, body: bytes, event_id: str, now: float | None = None) -> dict[str, str]:
    """Headers for a signed request carrying ``body`` (the exact bytes that will be sent)."""
    timestamp = str(int(time.time() if now is None else now))
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: compute_signature(secret, timestamp, body),
        DELIVERY_HEADER: event_id,
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        # Plain dicts are case-sensitive; HTTP header names are not.
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
    return value


def verify_request(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: int = 300,
    now: float | None = None,
) -> None:
    """Raise :class:`SignatureError` unless ``headers`` carry a valid, fresh signature of ``body``.

    The comparison is constant-time (:func:`hmac.compare_digest`).
    """
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if not timestamp or not signature:
        raise SignatureError("missing X-Handoff-Timestamp or X-Handoff-Signature header")
    # isdigit() alone also takes other scripts' digits and superscripts ("١٢", "²").
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise SignatureError("X-Handoff-Timestamp must be Unix time in whole seconds")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        raise SignatureError(f"timestamp is more than {tolerance} s away from this server's clock")
    expected = compute_signature(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("utf-8", "replace")):
        raise SignatureError("signature does not match the body")
