import time

import pytest

from handoff.signing import SignatureError, compute_signature, sign_headers, verify_request

SECRET = "s3cret"


def test_signature_is_hmac_sha256_over_timestamp_dot_body():
    # Reference value computed independently: HMAC-SHA256("s3cret", b"1700000000.{}")
    import hashlib
    import hmac

    expected = hmac.new(b"s3cret", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert compute_signature(SECRET, 1700000000, b"{}") == "sha256=" + expected


def test_signed_headers_verify():
    body = b'{"event":"x"}'
    headers = sign_headers(SECRET, body, "evt-1")
    assert headers["X-Handoff-Delivery"] == "evt-1"
    verify_request(SECRET, headers, body)
    # header names are case-insensitive
    verify_request(SECRET, {k.lower(): v for k, v in headers.items()}, body)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda h, b: (h, b + b" "), "does not match"),
        (lambda h, b: ({**h, "X-Handoff-Signature": "sha256=" + "0" * 64}, b), "does not match"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "X-Handoff-Signature"}, b), "missing"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "X-Handoff-Timestamp"}, b), "missing"),
        (lambda h, b: ({**h, "X-Handoff-Timestamp": "soon"}, b), "Unix time"),
    ],
)
def test_tampered_requests_are_refused(mutate, message):
    body = b'{"event":"x"}'
    headers, body = mutate(sign_headers(SECRET, body, "e"), body)
    with pytest.raises(SignatureError, match=message):
        verify_request(SECRET, headers, body)


def test_wrong_secret_is_refused():
    body = b"{}"
    with pytest.raises(SignatureError):
        verify_request("other", sign_headers(SECRET, body, "e"), body)


@pytest.mark.parametrize("skew", [-301, 301, 3600])
def test_stale_or_future_timestamps_are_refused(skew):
    body = b"{}"
    headers = sign_headers(SECRET, body, "e", now=time.time() + skew)
    with pytest.raises(SignatureError, match="300 s"):
        verify_request(SECRET, headers, body, tolerance=300)


def test_timestamp_inside_window_is_accepted():
    body = b"{}"
    verify_request(SECRET, sign_headers(SECRET, body, "e", now=time.time() - 290), body, tolerance=300)
