"""Verified customer identity: a token the embedding site signs, checked by the assistant.

What a web chat sends as ``metadata.customer`` (name, e-mail, id) is typed or set in the customer's
browser, so anybody can send anything. A site that knows who its signed-in customer is can say so in
a way the customer cannot forge: it signs a JWT with a secret it shares with the assistant, and the
web chat passes it along as ``metadata.customer_identity`` (as Zendesk messaging's JWT and
Intercom's identity verification do). Only the fields of a token that verifies count as verified.

The token: HS256, signed with ``HANDOFF_IDENTITY_SECRET``, claims

- ``sub``: the customer's id in the site's own records (required, a string);
- ``name``, ``email``: optional strings;
- ``exp``: required; a token that expires more than :data:`MAX_LIFETIME_SECONDS` ahead is refused,
  so a token that leaks stops working soon.

Without a secret nothing is verified. Outside development (``HANDOFF_ENV``) a secret shorter than
:data:`MIN_SECRET_LENGTH` characters is refused: :func:`identity_secret` raises, and a token is
then never taken as verified. A token that does not verify is ignored with a log line that says
why, never what the token holds.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

logger = logging.getLogger(__name__)

#: Message metadata key of the signed identity token.
METADATA_KEY = "customer_identity"
SECRET_VARIABLE = "HANDOFF_IDENTITY_SECRET"
#: The only algorithm accepted, whatever a token's header says (no "none", no RS256 with the
#: shared secret taken as a public key, no other HMAC).
ALGORITHM = "HS256"
#: How far ahead ``exp`` may be: a day.
MAX_LIFETIME_SECONDS = 24 * 3600
#: Clock difference allowed between the site and the assistant, seconds.
LEEWAY_SECONDS = 30
#: Shortest secret accepted outside development (HS256 wants a key of at least 256 bits).
MIN_SECRET_LENGTH = 32
#: Longer tokens are not even parsed.
MAX_TOKEN_LENGTH = 4096
#: Longest value kept of a claim (as for every customer field in the payload).
MAX_CLAIM_LENGTH = 500
DEVELOPMENT_ENVIRONMENTS = frozenset({"development", "dev", "test"})


class IdentitySecretError(ValueError):
    """``HANDOFF_IDENTITY_SECRET`` is too short for the environment."""


class IdentityRejected(Exception):
    """A token that does not verify; ``reason`` is a short code safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VerifiedIdentity:
    """Who the embedding site says the customer is, from a token that verified.

    Attributes:
        customer_id: The ``sub`` claim.
        name: The ``name`` claim, if any.
        email: The ``email`` claim, if any.
        expires_at: The ``exp`` claim, Unix time.
    """

    customer_id: str
    name: str | None = None
    email: str | None = None
    expires_at: float = 0.0

    def fields(self) -> dict[str, str]:
        """The verified values under the contract's customer field names."""
        values = {"customer_id": self.customer_id, "name": self.name, "email": self.email}
        return {key: value for key, value in values.items() if value}


def identity_secret(environ: Mapping[str, str] | None = None) -> str | None:
    """The secret identity tokens are signed with, or None when there is none.

    Raises:
        IdentitySecretError: Outside development, the secret is shorter than
            :data:`MIN_SECRET_LENGTH` characters.
    """
    environ = os.environ if environ is None else environ
    secret = environ.get(SECRET_VARIABLE) or ""
    if not secret:
        return None
    environment = (environ.get("HANDOFF_ENV") or "development").strip().lower()
    if len(secret) < MIN_SECRET_LENGTH and environment not in DEVELOPMENT_ENVIRONMENTS:
        raise IdentitySecretError(
            f"{SECRET_VARIABLE} is shorter than {MIN_SECRET_LENGTH} characters while "
            f"HANDOFF_ENV={environment!r}. Set a long random secret, e.g. "
            "python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    return secret


def _claim(payload: Mapping[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if isinstance(value, str) and value.strip():
        return value.strip()[:MAX_CLAIM_LENGTH]
    return None


def decode_identity(token: Any, secret: str, now: float | None = None) -> VerifiedIdentity:
    """Verify one identity token with ``secret``.

    Raises:
        IdentityRejected: The token is malformed, signed otherwise or with another key, expired,
            without ``exp`` or ``sub``, or valid for longer than :data:`MAX_LIFETIME_SECONDS`.
    """
    if not isinstance(token, str) or not token:
        raise IdentityRejected("not_a_token")
    if len(token) > MAX_TOKEN_LENGTH:
        raise IdentityRejected("too_long")
    now = time.time() if now is None else now
    try:
        # The signature is compared in constant time by PyJWT (hmac.compare_digest); the allowed
        # algorithms are pinned, so the header's "alg" cannot choose a weaker check.
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub"], "verify_exp": False},
            leeway=LEEWAY_SECONDS,
        )
    except jwt.MissingRequiredClaimError as error:
        raise IdentityRejected(f"missing_{error.claim}") from None
    except jwt.PyJWTError as error:
        raise IdentityRejected(_reason(error)) from None
    expires = payload.get("exp")
    if isinstance(expires, bool) or not isinstance(expires, (int, float)):
        raise IdentityRejected("bad_exp")
    # Checked here rather than by PyJWT so that `now` is the caller's clock in both checks.
    if expires + LEEWAY_SECONDS <= now:
        raise IdentityRejected("expired")
    if expires - now > MAX_LIFETIME_SECONDS + LEEWAY_SECONDS:
        raise IdentityRejected("exp_too_far")
    customer_id = _claim(payload, "sub")
    if customer_id is None:
        raise IdentityRejected("bad_sub")
    return VerifiedIdentity(
        customer_id=customer_id,
        name=_claim(payload, "name"),
        email=_claim(payload, "email"),
        expires_at=float(expires),
    )


def _reason(error: Exception) -> str:
    """A log-safe code for PyJWT's error (its messages may quote the token's values)."""
    if isinstance(error, jwt.InvalidSignatureError):
        return "bad_signature"
    if isinstance(error, jwt.InvalidAlgorithmError):
        return "algorithm_not_allowed"
    if isinstance(error, jwt.ImmatureSignatureError):
        return "not_yet_valid"
    if isinstance(error, jwt.InvalidAudienceError):
        return "audience_not_expected"
    if isinstance(error, jwt.DecodeError):
        return "malformed"
    return type(error).__name__


def verify_identity(
    token: Any,
    environ: Mapping[str, str] | None = None,
    now: float | None = None,
    conversation_id: str | None = None,
) -> VerifiedIdentity | None:
    """The verified identity in ``token``, or None (no token, no secret, or it does not verify).

    Never raises for a bad token or secret: an identity that cannot be verified is simply not
    verified. Logs why a token was ignored, with the conversation id and nothing from the token.
    """
    if token in (None, ""):
        return None
    try:
        secret = identity_secret(environ)
    except IdentitySecretError as error:
        logger.error("customer identity not verified (conversation %s): %s", conversation_id, error)
        return None
    if secret is None:
        logger.info(
            "customer identity not verified (conversation %s): %s is not set", conversation_id, SECRET_VARIABLE
        )
        return None
    try:
        return decode_identity(token, secret, now=now)
    except IdentityRejected as rejected:
        logger.warning("customer identity ignored (conversation %s): %s", conversation_id, rejected.reason)
        return None
