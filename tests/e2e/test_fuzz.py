"""Fuzzing the helpdesk channel (``POST /webhooks/helpdesk/webhook``) on the real Rasa server.

Generated bad input of every kind (random bytes, broken JSON, wrong types for every field, missing
fields, unknown events, oversized and chunked bodies, missing, wrong or stale signatures, junk
headers, and validly signed bodies that are wrong for the conversation) must get a 4xx answer,
never a 5xx, and must change nothing: a paused conversation's tracker and the handoff store are
the same afterwards, and the real loop still works.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from handoff.schemas import INBOUND_EVENTS, OUTBOUND_EVENTS
from handoff.signing import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, compute_signature
from tests.stack import Stack
from tests.support import TEST_SECRET, Receiver, helpdesk_event

pytestmark = pytest.mark.e2e

#: Generated inputs per run; the test fails if fewer were sent.
FUZZ_INPUTS = 1500
#: The channel's body limit (HANDOFF_MAX_BODY_BYTES default).
MAX_BODY = 256 * 1024
#: Agent text the fuzzing sends inside otherwise valid events; it must never reach the tracker.
CANARY = "fuzz canary: this must never reach the customer"
SIGNING_HEADERS = {TIMESTAMP_HEADER.lower(), SIGNATURE_HEADER.lower(), DELIVERY_HEADER.lower()}
FRAMING_HEADERS = {"content-length", "transfer-encoding", "host", "connection", "expect", "upgrade"}

statuses: Counter = Counter()
by_kind: Counter = Counter()


@pytest.fixture(scope="module")
def http():
    with requests.Session() as session:
        yield session


@dataclass(frozen=True)
class Known:
    """A paused conversation with its active handoff, and one whose handoff has ended."""

    active_conversation: str
    active_handoff: str
    ended_conversation: str
    ended_handoff: str


def start_handoff(stack: Stack, helpdesk: Receiver, sender: str) -> str:
    stack.say(sender, "hello")
    stack.say(sender, "I want to talk to a person")
    return helpdesk.wait_for("handoff.requested", sender)[0]["handoff_id"]


def wait_for_outbox(stack: Stack, timeout: float = 20) -> None:
    """Until nothing is waiting in the outbox (so the snapshot does not race the worker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _db(stack) as db:
            if not db.execute("SELECT count(*) FROM handoff_outbox WHERE status = 'pending'").fetchone()[0]:
                return
        time.sleep(0.2)
    raise AssertionError("the outbox did not drain")


@pytest.fixture(scope="module")
def known(stack, helpdesk) -> Known:
    active = f"fuzz-active-{uuid.uuid4().hex[:8]}"
    ended = f"fuzz-ended-{uuid.uuid4().hex[:8]}"
    active_handoff = start_handoff(stack, helpdesk, active)
    ended_handoff = start_handoff(stack, helpdesk, ended)
    assert stack.helpdesk_event(helpdesk_event("agent.handback", ended_handoff, ended)).status_code == 200
    assert stack.tracker(active)["paused"] is True
    wait_for_outbox(stack)
    return Known(active, active_handoff, ended, ended_handoff)


def _db(stack: Stack) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{stack.workdir / 'var' / 'handoff.db'}?mode=ro", uri=True, timeout=30)


def snapshot(stack: Stack, known: Known) -> dict:
    """What refused input must not change: both trackers and the handoff store."""
    state: dict = {}
    for conversation in (known.active_conversation, known.ended_conversation):
        tracker = stack.tracker(conversation)
        state[conversation] = {
            "events": len(tracker["events"]),
            "paused": tracker["paused"],
            "agent_turns": [
                e["text"] for e in tracker["events"] if (e.get("metadata") or {}).get("handoff_role") in ("agent", "notice")
            ],
        }
    with _db(stack) as db:
        state["handoffs"] = db.execute("SELECT * FROM handoffs ORDER BY id").fetchall()
        state["inbound"] = db.execute(
            "SELECT event_id, handoff_id, event_type FROM handoff_inbound_events ORDER BY event_id"
        ).fetchall()
        state["outbox"] = db.execute("SELECT event_id, event_type FROM handoff_outbox ORDER BY seq").fetchall()
    return state


# -- generated cases --------------------------------------------------------------------------------


@dataclass
class Case:
    kind: str
    body: bytes
    headers: dict = field(default_factory=dict)
    expected: int | None = None  # the exact answer, where the contract fixes it
    method: str = "POST"
    chunked: bool = False


def sign(raw: bytes, timestamp: int | None = None, secret: str = TEST_SECRET, event_id: str = "x") -> dict:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: compute_signature(secret, ts, raw),
        DELIVERY_HEADER: event_id,
    }


def encode(body: object) -> bytes:
    return json.dumps(body).encode()


def valid_event(kind: str, handoff_id: str, conversation_id: str) -> dict:
    """An event that would be accepted for that handoff (the cases below always break it)."""
    extra = {
        "agent.message": {"text": CANARY},
        "agent.handback": {"note": CANARY},
        "agent.transferred": {"queue": "sales", "note": CANARY},
    }.get(kind, {})
    return helpdesk_event(kind, handoff_id, conversation_id, **extra)


json_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)
non_strings = json_values.filter(lambda v: not isinstance(v, str))
long_text = st.integers(min_value=1, max_value=400).map(lambda n: "Ab1 " * 1300 + "x" * n)  # > 5000
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

#: For each field, values that make an otherwise valid event invalid.
WRONG_VALUES = {
    "event": non_strings,
    "event_id": non_strings | st.text(max_size=40).filter(lambda s: not re.fullmatch(r"[0-9a-f-]{36}", s)),
    "handoff_id": non_strings | st.text(max_size=40).filter(lambda s: not re.fullmatch(r"[0-9a-f-]{36}", s)),
    "conversation_id": non_strings | st.just(""),
    "agent": json_values.filter(lambda v: not isinstance(v, dict))
    | st.dictionaries(st.text(max_size=8).filter(lambda k: k != "name"), json_values, max_size=3)
    | st.builds(lambda v: {"name": v}, non_strings | st.just("") | st.integers(201, 400).map(lambda n: "n" * n)),
    "text": non_strings | st.just("") | long_text,
    "sent_at": non_strings | st.text(max_size=30).filter(lambda s: not DATE_TIME.match(s)),
    "note": json_values.filter(lambda v: v is not None and not isinstance(v, str)) | long_text,
    "queue": non_strings | st.just("") | st.integers(65, 200).map(lambda n: "q" * n),
}
FIELDS = {
    "agent.joined": ["event", "event_id", "handoff_id", "conversation_id", "agent", "sent_at"],
    "agent.message": ["event", "event_id", "handoff_id", "conversation_id", "agent", "text", "sent_at"],
    "agent.handback": ["event", "event_id", "handoff_id", "conversation_id", "agent", "sent_at", "note"],
    "agent.transferred": ["event", "event_id", "handoff_id", "conversation_id", "agent", "queue", "sent_at", "note"],
}
REQUIRED = {
    "agent.joined": ["event", "event_id", "handoff_id", "conversation_id", "agent"],
    "agent.message": ["event", "event_id", "handoff_id", "conversation_id", "agent", "text"],
    "agent.handback": ["event", "event_id", "handoff_id", "conversation_id", "agent"],
    "agent.transferred": ["event", "event_id", "handoff_id", "conversation_id", "agent", "queue"],
}
kinds = st.sampled_from(INBOUND_EVENTS)
header_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)
header_names = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"), min_size=1, max_size=20
).filter(lambda n: n.lower() not in SIGNING_HEADERS | FRAMING_HEADERS and n.lower() != "content-type")
junk_headers = st.dictionaries(header_names, header_text, max_size=4)
unicode_digits = st.sampled_from(["٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "०१२३४५६७८९", "０１２３４５６７８９"])


@st.composite
def wrong_type(draw, known: Known, name: str) -> Case:
    kind = draw(st.sampled_from([k for k in INBOUND_EVENTS if name in FIELDS[k]]))
    body = valid_event(kind, known.active_handoff, known.active_conversation)
    body[name] = draw(WRONG_VALUES[name])
    raw = encode(body)
    return Case(f"wrong type: {name}", raw, sign(raw), 400)


@st.composite
def missing_fields(draw, known: Known) -> Case:
    kind = draw(kinds)
    body = valid_event(kind, known.active_handoff, known.active_conversation)
    for name in draw(st.sets(st.sampled_from(REQUIRED[kind]), min_size=1)):
        del body[name]
    raw = encode(body)
    return Case("missing fields", raw, sign(raw), 400)


@st.composite
def unknown_event(draw, known: Known) -> Case:
    body = valid_event(draw(kinds), known.active_handoff, known.active_conversation)
    body["event"] = draw(
        st.sampled_from([*OUTBOUND_EVENTS, "agent.Joined", "agent.message ", "agent", "", "agent.left"])
        | st.text(max_size=30).filter(lambda s: s not in INBOUND_EVENTS)
    )
    raw = encode(body)
    return Case("unknown event", raw, sign(raw), 400)


@st.composite
def bad_text(draw, known: Known) -> Case:
    """Strings no database can store faithfully: lone surrogates, NUL."""
    kind = draw(st.sampled_from(["agent.joined", "agent.message"]))
    body = valid_event(kind, known.active_handoff, known.active_conversation)
    bad = draw(st.sampled_from(["\ud800", "\udfff", "\x00", "a\ud83dz", "Sanne\x00"]))
    target = draw(st.sampled_from(["name", "text"] if kind == "agent.message" else ["name"]))
    if target == "name":
        body["agent"] = {"name": "Sanne" + bad}
    else:
        body["text"] = CANARY + bad
    raw = encode(body)  # ensure_ascii: valid JSON syntax with \\ud800 / \\u0000 escapes
    return Case("unstorable text", raw, sign(raw), 400)


@st.composite
def odd_uuid(draw, known: Known) -> Case:
    """UUIDs Python's uuid module reads but that are not the canonical 36 characters."""
    kind = draw(kinds)
    body = valid_event(kind, known.active_handoff, known.active_conversation)
    value = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
    value = value + "-" * draw(st.integers(1, 60))
    body[draw(st.sampled_from(["event_id", "handoff_id"]))] = value
    raw = encode(body)
    return Case("non-canonical uuid", raw, sign(raw), 400)


@st.composite
def random_bytes(draw, known: Known) -> Case:
    raw = draw(st.binary(max_size=2000))
    if draw(st.booleans()):
        return Case("random bytes, signed", raw, sign(raw), 400)
    return Case("random bytes, unsigned", raw, {}, 401)


MALFORMED = ["truncated", "garbled", "nested", "not an object", "encoding"]


@st.composite
def malformed_json(draw, known: Known, how: str) -> Case:
    raw = encode(valid_event(draw(kinds), known.active_handoff, known.active_conversation))
    if how == "truncated":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif how == "garbled":
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + draw(st.sampled_from([b"\x00", b"\xff", b"{", b"'", b"\\", b",,"])) + raw[at + 1 :]
        try:
            json.loads(raw)
            raw = raw[:-1]  # a closing brace replaced by an opening one, say: still break it
        except (ValueError, RecursionError):
            pass
    elif how == "nested":
        depth = draw(st.integers(500, 50000))  # stays under the size limit
        raw = draw(st.sampled_from([b"[", b'{"a":'])) * depth + b"1"
    elif how == "not an object":
        raw = encode(draw(json_values.filter(lambda v: not isinstance(v, dict))))
    else:
        raw = json.dumps(json.loads(raw)).encode(draw(st.sampled_from(["utf-16", "utf-32", "latin-1"])))
        if raw.isascii():
            raw = b"\xff\xfe" + raw
    return Case(f"malformed JSON: {how}", raw, sign(raw), 400)


@st.composite
def oversized(draw, known: Known) -> Case:
    size = MAX_BODY + draw(st.integers(1, 200_000))
    raw = draw(st.sampled_from([b"x", b"[", b'{"a":1}'])) * size
    raw = raw[:size]
    headers = sign(raw) if draw(st.booleans()) else {}
    return Case("oversized", raw, headers, 413, chunked=draw(st.booleans()))


SIGNATURE_TROUBLE = [
    "missing timestamp", "missing signature", "missing both", "wrong secret", "altered signature",
    "no prefix", "junk signature", "other body", "stale", "future", "junk timestamp",
    "unicode digits", "superscript", "timestamp moved",
]


@st.composite
def bad_signature(draw, known: Known, how: str) -> Case:
    """Signature trouble over an event that would otherwise be accepted."""
    raw = encode(valid_event(draw(kinds), known.active_handoff, known.active_conversation))
    now = int(time.time())
    headers = sign(raw)
    if how == "missing timestamp":
        del headers[TIMESTAMP_HEADER]
    elif how == "missing signature":
        del headers[SIGNATURE_HEADER]
    elif how == "missing both":
        del headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    elif how == "wrong secret":
        headers = sign(raw, secret=draw(st.text(min_size=1, max_size=30).filter(lambda s: s != TEST_SECRET)))
    elif how == "altered signature":
        signature = headers[SIGNATURE_HEADER]
        # What is drawn must not depend on the signature (it follows the clock): a position and a
        # non-zero shift of the hex digit there.
        at = draw(st.integers(len("sha256="), len(signature) - 1))
        digit = "0123456789abcdef"[("0123456789abcdef".index(signature[at]) + draw(st.integers(1, 15))) % 16]
        headers[SIGNATURE_HEADER] = signature[:at] + digit + signature[at + 1 :]
    elif how == "no prefix":
        headers[SIGNATURE_HEADER] = headers[SIGNATURE_HEADER][len("sha256="):]
    elif how == "junk signature":
        headers[SIGNATURE_HEADER] = draw(header_text)
    elif how == "other body":
        raw = raw.replace(CANARY.encode(), b"another text") if CANARY.encode() in raw else raw + b" "
    elif how == "stale":
        headers = sign(raw, timestamp=now - draw(st.integers(301, 10**9)))  # bounds must not follow the clock
    elif how == "future":
        headers = sign(raw, timestamp=now + draw(st.integers(301, 10**11)))
    elif how == "junk timestamp":
        headers[TIMESTAMP_HEADER] = draw(header_text.filter(lambda s: not s.isdigit()))
    elif how == "unicode digits":
        digits = draw(unicode_digits)
        headers[TIMESTAMP_HEADER] = "".join(digits[int(c)] for c in str(now)).encode()
    elif how == "superscript":
        headers[TIMESTAMP_HEADER] = draw(st.sampled_from(["²", "¹²³", "⁴⁵", "①"])).encode()
    else:
        headers[TIMESTAMP_HEADER] = str(now + draw(st.integers(1, 200)))
    return Case(f"signature: {how}", raw, headers, 401)


WRONG_TARGETS = [
    "unknown handoff", "wrong conversation", "ended handoff", "ended handoff, other conversation",
    "active handoff, ended conversation",
]


@st.composite
def wrong_target(draw, known: Known, how: str) -> Case:
    """Validly signed, well-formed events that are wrong for the conversation."""
    kind = draw(kinds)
    other_conversation = draw(
        st.sampled_from([known.ended_conversation, "nobody"])
        | st.text(min_size=1, max_size=60).filter(lambda s: s not in (known.active_conversation, known.ended_conversation))
    )
    expected = 404
    if how == "unknown handoff":
        conversation = draw(st.sampled_from([known.active_conversation, known.ended_conversation]))
        body = valid_event(kind, str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))), conversation)
    elif how == "wrong conversation":
        body = valid_event(kind, known.active_handoff, other_conversation)
    elif how == "ended handoff":
        body = valid_event(kind, known.ended_handoff, known.ended_conversation)
        expected = 409
    elif how == "ended handoff, other conversation":
        body = valid_event(kind, known.ended_handoff, known.active_conversation)
    else:
        body = valid_event(kind, known.active_handoff, known.ended_conversation)
    raw = encode(body)
    return Case(f"wrong target: {how}", raw, sign(raw, event_id=body["event_id"]), expected)


@st.composite
def wrong_method(draw, known: Known) -> Case:
    raw = encode(valid_event(draw(kinds), known.active_handoff, known.active_conversation))
    return Case("wrong method", raw, sign(raw), 405, method=draw(st.sampled_from(["PUT", "PATCH", "DELETE"])))


def cases(known: Known) -> st.SearchStrategy[Case]:
    """Every kind of bad input, each variant a branch of its own (so each gets its share)."""
    simple = [missing_fields, unknown_event, bad_text, odd_uuid, random_bytes, oversized, wrong_method]
    return st.one_of(
        [g(known) for g in simple]
        + [wrong_type(known, name) for name in WRONG_VALUES]
        + [malformed_json(known, how) for how in MALFORMED]
        + [bad_signature(known, how) for how in SIGNATURE_TROUBLE]
        + [wrong_target(known, how) for how in WRONG_TARGETS]
    )


def send(http: requests.Session, stack: Stack, case: Case, junk: dict) -> requests.Response:
    headers = {**junk, **case.headers}
    data = iter([case.body[i : i + 65536] for i in range(0, len(case.body), 65536)]) if case.chunked else case.body
    return http.request(case.method, f"{stack.rasa_url}/webhooks/helpdesk/webhook", data=data, headers=headers, timeout=60)


def test_bad_input_gets_4xx_and_changes_nothing(stack, known, http):
    before = snapshot(stack, known)
    assert before[known.active_conversation]["paused"] is True
    statuses.clear()
    by_kind.clear()

    @settings(
        max_examples=FUZZ_INPUTS,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much, HealthCheck.large_base_example],
    )
    @given(case=cases(known), junk=junk_headers)
    def fuzz(case: Case, junk: dict) -> None:
        answer = send(http, stack, case, junk)
        statuses[answer.status_code] += 1
        by_kind[(case.kind, answer.status_code)] += 1
        assert answer.status_code < 500, f"{case.kind}: {answer.status_code} {answer.text[:300]}"
        assert 400 <= answer.status_code < 500, f"{case.kind}: {answer.status_code} {answer.text[:300]}"
        if case.expected is not None:
            assert answer.status_code == case.expected, f"{case.kind}: {answer.status_code} {answer.text[:300]}"

    fuzz()
    sent = sum(statuses.values())
    print(f"\nfuzz: {sent} inputs; status codes {dict(sorted(statuses.items()))}")
    for (kind, status), count in sorted(by_kind.items()):
        print(f"  {kind:<50} {status}: {count}")
    assert sent >= FUZZ_INPUTS, f"only {sent} inputs were sent"
    assert set(statuses) >= {400, 401, 404, 405, 409, 413}

    wait_for_outbox(stack)
    assert snapshot(stack, known) == before
    rasa_log = (stack.workdir / "rasa.log").read_text(errors="replace")
    assert "Traceback" not in rasa_log and "Exception occurred while handling uri" not in rasa_log, rasa_log[-6000:]


def test_the_loop_still_works_after_fuzzing(stack, known, http, helpdesk):
    conversation, handoff_id = known.active_conversation, known.active_handoff

    def post(body: dict) -> requests.Response:
        raw = encode(body)
        return http.post(f"{stack.rasa_url}/webhooks/helpdesk/webhook", data=raw, headers=sign(raw, event_id=body["event_id"]), timeout=60)

    assert post(helpdesk_event("agent.joined", handoff_id, conversation)).status_code == 200
    assert post(helpdesk_event("agent.message", handoff_id, conversation, text="Sanne here, after the storm.")).status_code == 200
    tracker = stack.tracker(conversation)
    agent_turns = [e["text"] for e in tracker["events"] if (e.get("metadata") or {}).get("handoff_role") == "agent"]
    assert agent_turns == ["Sanne here, after the storm."]
    assert CANARY not in json.dumps(tracker)

    assert stack.say(conversation, "thanks, still waiting for parcel 12") == []
    relayed = helpdesk.wait_for("conversation.message", conversation)
    assert relayed[-1]["message"]["text"] == "thanks, still waiting for parcel 12"

    assert post(helpdesk_event("agent.handback", handoff_id, conversation)).status_code == 200
    assert stack.tracker(conversation)["paused"] is False
    assert stack.say(conversation, "what are your opening hours?"), "the bot answers again"
