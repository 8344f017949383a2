import base64
import hashlib
import hmac
import json
import logging
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from handoff.identity import (
    MAX_LIFETIME_SECONDS,
    IdentityRejected,
    IdentitySecretError,
    VerifiedIdentity,
    decode_identity,
    identity_secret,
    verify_identity,
)

SECRET = "identity-test-secret-" + "0123456789abcdef" * 4  # long enough for HS512 too
NOW = 1_800_000_000


def token(claims=None, key=SECRET, algorithm="HS256", **extra):
    body = {"sub": "C-7", "name": "Anna de Vries", "email": "anna@example.nl", "exp": NOW + 600, **(claims or {})}
    for name, value in extra.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return jwt.encode(body, key, algorithm=algorithm)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def reason(raw, secret=SECRET, now=NOW):
    with pytest.raises(IdentityRejected) as rejected:
        decode_identity(raw, secret, now=now)
    return rejected.value.reason


def test_a_valid_token_gives_its_verified_fields():
    identity = decode_identity(token(), SECRET, now=NOW)
    assert identity == VerifiedIdentity(customer_id="C-7", name="Anna de Vries", email="anna@example.nl", expires_at=NOW + 600)
    assert identity.fields() == {"customer_id": "C-7", "name": "Anna de Vries", "email": "anna@example.nl"}


def test_name_and_email_are_optional():
    identity = decode_identity(token(name=None, email=None), SECRET, now=NOW)
    assert identity.fields() == {"customer_id": "C-7"}
    # A claim that is not text is not taken.
    assert decode_identity(token(name=42, email=["x"]), SECRET, now=NOW).fields() == {"customer_id": "C-7"}


def test_an_expired_token_is_refused():
    assert reason(token(exp=NOW - 3600)) == "expired"
    # A small clock difference is allowed.
    assert decode_identity(token(exp=NOW - 5), SECRET, now=NOW).customer_id == "C-7"


def test_a_token_signed_with_another_key_is_refused():
    assert reason(token(key="another-secret-0123456789abcdef0123456")) == "bad_signature"


def test_alg_none_is_refused():
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": "C-7", "exp": NOW + 600}).encode())
    assert reason(f"{header}.{claims}.") == "algorithm_not_allowed"
    assert reason(f"{header}.{claims}") == "malformed"


def test_other_algorithms_are_refused_even_with_the_right_key():
    assert reason(token(algorithm="HS512")) == "algorithm_not_allowed"
    assert reason(token(algorithm="HS384")) == "algorithm_not_allowed"


def test_rs256_confusion_is_refused():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert reason(token(key=private, algorithm="RS256")) == "algorithm_not_allowed"
    # The classic confusion: a token whose header says HS256, signed with the public key as the
    # HMAC secret, against a verifier that would use that public key; here the secret is fixed.
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": "C-7", "exp": NOW + 600}).encode())
    signature = b64(hmac.new(public_pem, f"{header}.{claims}".encode(), hashlib.sha256).digest())
    assert reason(f"{header}.{claims}.{signature}") == "bad_signature"


def test_a_token_without_exp_or_sub_is_refused():
    assert reason(token(exp=None)) == "missing_exp"
    assert reason(token(sub=None)) == "missing_sub"
    assert reason(token(sub="  ")) == "bad_sub"
    assert reason(token(exp="tomorrow")) in {"bad_exp", "DecodeError"}


def test_a_token_valid_for_too_long_is_refused():
    assert reason(token(exp=NOW + MAX_LIFETIME_SECONDS + 3600)) == "exp_too_far"
    assert decode_identity(token(exp=NOW + MAX_LIFETIME_SECONDS), SECRET, now=NOW).customer_id == "C-7"


def test_a_tampered_claim_breaks_the_signature():
    header, claims, signature = token().split(".")
    payload = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    payload["sub"] = "C-1"  # someone else's account
    assert reason(f"{header}.{b64(json.dumps(payload).encode())}.{signature}") == "bad_signature"


def test_a_token_not_yet_valid_is_refused():
    assert reason(token(nbf=NOW + 3600)) == "not_yet_valid"


def test_garbage_is_refused_without_raising_anything_else():
    for raw in ("", "abc", "a.b.c", "x" * 5000, None, 42, {"sub": "C-7"}):
        assert reason(raw)


def test_the_secret_comes_from_the_environment():
    assert identity_secret({}) is None
    assert identity_secret({"HANDOFF_IDENTITY_SECRET": ""}) is None
    assert identity_secret({"HANDOFF_IDENTITY_SECRET": SECRET, "HANDOFF_ENV": "production"}) == SECRET
    # Short secrets are for development only.
    assert identity_secret({"HANDOFF_IDENTITY_SECRET": "short", "HANDOFF_ENV": "test"}) == "short"
    with pytest.raises(IdentitySecretError, match="32 characters"):
        identity_secret({"HANDOFF_IDENTITY_SECRET": "short", "HANDOFF_ENV": "production"})


def test_verify_identity_never_raises_and_logs_no_token_content(caplog):
    caplog.set_level(logging.INFO, logger="handoff.identity")
    environ = {"HANDOFF_IDENTITY_SECRET": SECRET, "HANDOFF_ENV": "production"}
    now = time.time()
    good = jwt.encode({"sub": "C-7", "name": "Anna de Vries", "exp": int(now) + 600}, SECRET, algorithm="HS256")
    assert verify_identity(good, environ, conversation_id="conv-1").customer_id == "C-7"
    assert verify_identity(None, environ) is None

    forged = jwt.encode({"sub": "C-7", "name": "Anna de Vries", "exp": int(now) + 600}, "y" * 40, algorithm="HS256")
    assert verify_identity(forged, environ, conversation_id="conv-2") is None
    assert verify_identity(good, {}, conversation_id="conv-3") is None  # no secret: nothing verified
    short = {"HANDOFF_IDENTITY_SECRET": "short", "HANDOFF_ENV": "production"}
    assert verify_identity(good, short, conversation_id="conv-4") is None  # refused secret
    logged = caplog.text
    assert "conv-2" in logged and "bad_signature" in logged
    assert "conv-3" in logged and "conv-4" in logged
    for private in ("Anna", "C-7", forged, good, forged.split(".")[1]):
        assert private not in logged
