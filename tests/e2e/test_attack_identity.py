"""A customer who claims to be someone else, on the real servers: forged ``metadata.customer`` and
forged, expired or wrongly signed identity tokens reach the helpdesk and the agent's console as
given by the customer, unverified; only a token signed with ``HANDOFF_IDENTITY_SECRET`` is verified.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import time
import uuid

import jwt
import pytest

from tests.stack import Stack

pytestmark = pytest.mark.e2e

IDENTITY_SECRET = "e2e-identity-secret-" + uuid.uuid4().hex  # 52 characters
#: What an attacker's browser claims, including flags that would make it look verified.
FORGED_CUSTOMER = {
    "name": "Mallory Forged",
    "email": "mallory@example.org",
    "customer_id": "C-ADMIN",
    "verified": {"name": True, "email": True, "customer_id": True},
    "sources": {"name": "identity"},
}
VICTIM = {"sub": "C-VICTIM-7731", "name": "Victoria Victim", "email": "victoria@example.org"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token(key: str = IDENTITY_SECRET, algorithm: str = "HS256", **claims) -> str:
    return jwt.encode({**VICTIM, "exp": int(time.time()) + 600, **claims}, key, algorithm=algorithm)


def _unsigned() -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps({**VICTIM, 'exp': int(time.time()) + 600}).encode())}."


BAD_TOKENS = {
    "wrong_key": lambda: _token(key="another-secret-" + uuid.uuid4().hex),
    "expired": lambda: _token(exp=int(time.time()) - 3600),
    "alg_none": _unsigned,
    "hs512": lambda: _token(algorithm="HS512", key=IDENTITY_SECRET * 2),
    "exp_too_far": lambda: _token(exp=int(time.time()) + 30 * 24 * 3600),
    "no_exp": lambda: jwt.encode(VICTIM, IDENTITY_SECRET, algorithm="HS256"),
    "not_a_token": lambda: "Victoria Victim C-VICTIM-7731",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = Stack(
        tmp_path_factory.mktemp("identity"), with_helpdesk=True, HANDOFF_IDENTITY_SECRET=IDENTITY_SECRET
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def agent(stack):
    """A browser session signed in to the embedded helpdesk as Sanne."""
    return stack.sign_in("sanne")


def _ticket(stack: Stack, sender: str, timeout: float = 30) -> tuple[str, dict]:
    """The helpdesk's ticket for ``sender``: its id and the handoff.requested payload it received."""
    database = stack.workdir / "var" / "helpdesk.db"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if database.exists():
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
                row = connection.execute(
                    "SELECT ticket_id, payload FROM tickets WHERE conversation_id = ?", (sender,)
                ).fetchone()
            if row:
                return row[0], json.loads(row[1])
        time.sleep(0.3)
    raise AssertionError(f"no ticket for {sender}:\n{stack.log('actions')}")


def _hand_off(stack: Stack, metadata: dict) -> str:
    sender = f"identity-{uuid.uuid4().hex[:8]}"
    assert stack.say(sender, "hello", metadata=metadata), "the bot answers a greeting"
    told = " ".join(m.get("text", "") for m in stack.say(sender, "I want to talk to a person"))
    assert "colleague" in told.lower(), told
    return sender


def _console_marks(page: str) -> dict[str, tuple[str, bool]]:
    """Field → (its data-verified attribute, whether the cell says "verified") on a ticket page."""
    marks = {}
    for key, flag, cell in re.findall(r'<dd data-field="([^"]+)" data-verified="([^"]+)">(.*?)</dd>', page, re.S):
        marks[key] = (flag, ">verified<" in cell)
    return marks


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_forged_details_and_a_bad_identity_token_stay_unverified(stack, agent, kind):
    token = BAD_TOKENS[kind]()
    sender = _hand_off(stack, {"customer": FORGED_CUSTOMER, "customer_identity": token})
    ticket_id, payload = _ticket(stack, sender)

    customer = payload["customer"]
    # What the customer sent is still passed on (existing helpdesks keep working), but as theirs.
    assert (customer["name"], customer["email"], customer["customer_id"]) == ("Mallory Forged", "mallory@example.org", "C-ADMIN")
    assert customer["verified"] == {"name": False, "email": False, "customer_id": False}
    assert set(customer["sources"].values()) == {"channel"}
    # Nothing of the token's claims is taken, and the token itself goes nowhere.
    assert "Victoria" not in json.dumps(payload) and "C-VICTIM" not in json.dumps(payload)
    assert token not in json.dumps(payload)
    assert "customer_identity" not in payload["channel"]

    page = agent.get(f"{stack.helpdesk_url}/tickets/{ticket_id}", timeout=10).text
    assert _console_marks(page) == {
        "name": ("false", False),
        "email": ("false", False),
        "customer_id": ("false", False),
    }
    assert "given by the customer, unverified" in page
    assert token not in page


def test_a_correctly_signed_identity_is_verified_and_wins(stack, agent):
    token = _token(email=None)  # the site vouches for id and name, not for an e-mail address
    sender = _hand_off(stack, {"customer": FORGED_CUSTOMER, "customer_identity": token})
    ticket_id, payload = _ticket(stack, sender)

    customer = payload["customer"]
    assert (customer["name"], customer["customer_id"]) == ("Victoria Victim", "C-VICTIM-7731")
    assert customer["email"] == "mallory@example.org"  # given by the customer, kept as such
    assert customer["verified"] == {"customer_id": True, "name": True, "email": False}
    assert customer["sources"] == {"customer_id": "identity", "name": "identity", "email": "channel"}
    assert token not in json.dumps(payload)

    page = agent.get(f"{stack.helpdesk_url}/tickets/{ticket_id}", timeout=10).text
    assert _console_marks(page) == {
        "name": ("true", True),
        "email": ("false", False),
        "customer_id": ("true", True),
    }
    assert token not in page


def test_the_logs_say_why_a_token_was_ignored_without_its_content(stack):
    token = BAD_TOKENS["wrong_key"]()
    sender = _hand_off(stack, {"customer_identity": token})
    _ticket(stack, sender)
    logs = {name: (stack.workdir / f"{name}.log").read_text(errors="replace") for name in ("actions", "helpdesk")}
    assert f"customer identity ignored (conversation {sender}): bad_signature" in logs["actions"]
    for name, text in logs.items():
        assert token not in text and token.split(".")[1] not in text, name
        assert "Victoria Victim" not in text, name
