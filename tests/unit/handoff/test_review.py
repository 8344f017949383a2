"""Training-data candidates (handoff/review.py, python -m handoff.tools.review): the three sources,
masking, deduplication, grouping, the Review page's decisions, and a file `rasa data validate`
accepts beside the project's data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from handoff import review
from handoff.databases import tracker_store_url
from handoff.review import (
    ACCEPT,
    FALLBACK,
    LOW_CONFIDENCE,
    MISUNDERSTOOD,
    REJECT,
    candidate_id,
    collect,
    mask,
    misunderstood_turns,
    normalise,
    to_yaml,
    training_examples,
)
from handoff.settings import PROJECT_ROOT
from handoff.store import HandoffStore, HandoffWrapUpRow, create_db_engine, new_event
from handoff.tools import review as review_cli

NOW = 1_800_000_000.0
DAY = 86400.0

# The assistant's wrap-up table (written by the helpdesk channel at hand-back).
WRAPUPS = HandoffWrapUpRow.__table__
# Rasa's SQL tracker store table.
EVENTS = sa.Table(
    "events",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sender_id", sa.String(255), nullable=False),
    sa.Column("type_name", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.Float),
    sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)),
    sa.Column("data", sa.Text),
)


def turn(text: str, intent: str | None = None, confidence: float | None = None, role: str = "customer") -> dict:
    return {"role": role, "text": text, "timestamp": "2027-01-15T08:00:00.000Z", "intent": intent, "confidence": confidence}


class Seed:
    """A handoff database and a tracker store with known content."""

    def __init__(self, tmp_path: Path, wrapups: bool = True) -> None:
        self.handoff_url = f"sqlite:///{tmp_path / 'handoff.db'}"
        self.tracker_url = f"sqlite:///{tmp_path / 'rasa.db'}"
        HandoffStore(self.handoff_url).close()
        self.handoff = create_db_engine(self.handoff_url)
        if wrapups:
            WRAPUPS.create(self.handoff, checkfirst=True)
        else:  # a database from before wrap-ups (handoff/store.py may create the table)
            WRAPUPS.drop(self.handoff, checkfirst=True)
        self.tracker = create_db_engine(self.tracker_url)
        EVENTS.create(self.tracker)
        self.clock = NOW - DAY

    def handoff_with(
        self,
        handoff_id: str,
        conversation_id: str,
        language: str,
        transcript: list[dict],
        why: str | None = "bot_misunderstood",
        intent: str | None = None,
        new_topic: bool = False,
        at: float | None = None,
        customer: dict | None = None,
    ) -> None:
        at = NOW - DAY if at is None else at
        with self.handoff.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO handoffs (id, conversation_id, state, reason, priority, queue, language, "
                    "created_at, updated_at) VALUES (:id, :c, 'ended', 'fallback', 'normal', 'support', :l, :t, :t)"
                ),
                {"id": handoff_id, "c": conversation_id, "l": language, "t": at},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO handoff_records (handoff_id, conversation_id, reason, requested_at, transcript) "
                    "VALUES (:id, :c, 'fallback', :t, :tr)"
                ),
                {"id": handoff_id, "c": conversation_id, "t": at, "tr": json.dumps(transcript)},
            )
            if customer is not None:
                body = {"event": "handoff.requested", "handoff_id": handoff_id, "customer": customer}
                connection.execute(
                    sa.text(
                        "INSERT INTO handoff_outbox (event_id, handoff_id, conversation_id, event_type, body, "
                        "status, attempts, next_attempt_at, created_at) VALUES "
                        "(:e, :id, :c, 'handoff.requested', :b, 'pending', 0, :t, :t)"
                    ),
                    {"e": "ev-" + handoff_id, "id": handoff_id, "c": conversation_id, "b": json.dumps(body), "t": at},
                )
            if why is not None:
                connection.execute(
                    WRAPUPS.insert().values(
                        handoff_id=handoff_id,
                        conversation_id=conversation_id,
                        outcome="resolved",
                        why=why,
                        intent=intent,
                        new_topic=new_topic,
                        agent="grace",
                        created_at=at + 600,
                    )
                )

    def event(self, sender: str, data: dict, at: float | None = None) -> None:
        self.clock += 1
        with self.tracker.begin() as connection:
            connection.execute(
                EVENTS.insert().values(
                    sender_id=sender,
                    type_name=data["event"],
                    timestamp=self.clock if at is None else at,
                    data=json.dumps(data),
                )
            )

    def user(self, sender: str, text: str, intent: str, confidence: float, ranking=None, at=None, **metadata) -> None:
        parse = {"intent": {"name": intent, "confidence": confidence}, "text": text}
        if ranking is not None:
            parse["intent_ranking"] = [{"name": n, "confidence": c} for n, c in ranking]
        self.event(sender, {"event": "user", "text": text, "parse_data": parse, "metadata": metadata}, at)

    def slot(self, sender: str, name: str, value) -> None:
        self.event(sender, {"event": "slot", "name": name, "value": value})

    def close(self) -> None:
        self.handoff.dispose()
        self.tracker.dispose()


@pytest.fixture
def seed(tmp_path):
    data = Seed(tmp_path)
    yield data
    data.close()


@pytest.fixture
def nlu_dir(tmp_path) -> Path:
    """A small training set: one example in each language, one with an order number, one with entity markup."""
    folder = tmp_path / "nlu"
    (folder / "en").mkdir(parents=True)
    (folder / "en" / "faq.yml").write_text(
        'version: "3.1"\nnlu:\n  - intent: ask_opening_hours\n    examples: |\n'
        "      - What are your opening hours?\n      - cancel order 100387\n"
        "      - my email is [jan@example.nl](email)\n",
        encoding="utf-8",
    )
    (folder / "names.yml").write_text(
        'version: "3.1"\nnlu:\n  - lookup: first_name\n    examples: |\n      - Ada\n', encoding="utf-8"
    )
    return folder


def seed_everything(seed: Seed) -> None:
    # h1 (Dutch): the customer asked twice about a refund, then for a person.
    seed.handoff_with(
        "h1",
        "c1",
        "nl",
        [
            turn("hoi", "greet", 0.98),
            turn("Hallo! Waarmee kan ik helpen?", role="bot"),
            turn("waar blijft mijn geld voor bestelling 654321?", "ask_order_status", 0.55),
            turn("Je bestelling is onderweg.", role="bot"),
            turn("mijn geld terug van NW-123456 aub, ik ben Sanne", "nlu_fallback", 0.3),
            turn("ik wil een medewerker", "request_human", 0.99),
        ],
        intent="ask_refund_status",
    )
    # h2 (English): the trigger turn names the customer (known from the slots and the outbox),
    # an e-mail address and a phone number.
    seed.handoff_with(
        "h2",
        "c2",
        "en",
        [turn("hi, Ada Lovelace here. I moved, email ada@example.com or call +31 6 1234 5678", "ask_account", 0.81)],
        intent="change_address",
        customer={"name": "Lovelace"},
    )
    seed.slot("c2", "customer_name", "Ada")
    # h3: a new topic (counted, not used); h4: another reason; h5: already in the training data;
    # h6: too old; h7: the bot had it right.
    seed.handoff_with("h3", "c3", "en", [turn("do you sell gift wrap", "ask_product", 0.7)], new_topic=True)
    seed.handoff_with("h4", "c4", "en", [turn("how much is shipping to Aruba", "ask_delivery", 0.9)], why="missing_knowledge")
    seed.handoff_with("h5", "c5", "en", [turn("what are your opening hours", "ask_delivery", 0.9)], intent="ask_opening_hours")
    seed.handoff_with("h6", "c6", "en", [turn("old message", "ask_delivery", 0.2)], intent="ask_returns", at=NOW - 60 * DAY)
    seed.handoff_with("h7", "c7", "en", [turn("I want my refund", "ask_refund_status", 0.95)], intent="ask_refund_status")

    # The tracker store: a Dutch conversation (language slot after each message).
    seed.user("t1", "kan ik met ideal betalen", "ask_payment_methods", 0.45)
    seed.slot("t1", "language", "nl")
    seed.user("t1", "asdf mijn pakket", "nlu_fallback", 0.5, ranking=[("nlu_fallback", 0.5), ("ask_delivery", 0.38), ("greet", 0.1)])
    seed.slot("t1", "language", "nl")
    seed.user("t1", "bedankt", "thank", 0.99)
    # No language slot: detected. The same message twice (once in other case and punctuation).
    seed.user("t2", "where is my parcel, my name is Bob Smith", "ask_order_status", 0.5)
    seed.user("t2", "Where is my parcel my name is Bob Smith!!", "ask_order_status", 0.52)
    seed.user("t2", "/greet", "greet", 0.2)  # a button payload
    seed.user("t2", "EXTERNAL: handback", "EXTERNAL_handback", 0.1, is_external=True)
    # The same message as one of h1's, another order number: one candidate, the agent's label.
    seed.user("t3", "Waar blijft mijn geld voor bestelling 777777", "ask_order_status", 0.4)
    seed.slot("t3", "language", "nl")
    # Too old, and already in the training data (an order number masked on both sides).
    seed.user("t4", "lkjh old", "nlu_fallback", 0.3, at=NOW - 40 * DAY)
    seed.user("t4", "cancel order 200100", "cancel_order", 0.58)


def run(seed: Seed, nlu_dir: Path, **kwargs) -> review.Review:
    return collect(seed.handoff, seed.tracker, now=NOW, nlu_dir=nlu_dir, **kwargs)


def listed(result: review.Review) -> list[tuple[str, str, str, str]]:
    return [(i, lang, c.source, c.text) for i, lang, items in result.groups() for c in items]


def test_the_candidates_of_every_source_exactly(seed, nlu_dir):
    seed_everything(seed)

    result = run(seed, nlu_dir)

    assert listed(result) == [
        ("ask_delivery", "nl", FALLBACK, "asdf mijn pakket"),
        ("ask_order_status", "en", LOW_CONFIDENCE, "where is my parcel, my name is NAME"),
        ("ask_payment_methods", "nl", LOW_CONFIDENCE, "kan ik met ideal betalen"),
        ("ask_refund_status", "nl", MISUNDERSTOOD, "waar blijft mijn geld voor bestelling ORDER_NUMBER?"),
        ("ask_refund_status", "nl", MISUNDERSTOOD, "mijn geld terug van ORDER_NUMBER aub, ik ben NAME"),
        ("change_address", "en", MISUNDERSTOOD, "hi, NAME here. I moved, email EMAIL or call PHONE"),
    ]
    # h1's first message came up again in the tracker store: counted once, with the agent's label.
    refund = result.groups()[3][2][0]
    assert (refund.occurrences, refund.sources, refund.predicted) == (2, {MISUNDERSTOOD, LOW_CONFIDENCE}, "ask_order_status")
    parcel = result.groups()[1][2][0]
    assert (parcel.occurrences, parcel.confidence, parcel.to_check) == (2, 0.5, True)
    assert result.found == {MISUNDERSTOOD: 4, FALLBACK: 1, LOW_CONFIDENCE: 5}
    assert (result.new_topic, result.in_training_data, result.duplicates, result.rejected) == (1, 2, 2, 0)
    assert result.by_source() == {MISUNDERSTOOD: 3, FALLBACK: 1, LOW_CONFIDENCE: 2}
    assert result.counts()[(MISUNDERSTOOD, "ask_refund_status", "nl")] == 2
    assert result.notes == []


def test_a_lower_threshold_leaves_out_what_the_bot_was_fairly_sure_of(seed, nlu_dir):
    seed_everything(seed)

    result = run(seed, nlu_dir, threshold=0.5)

    texts = [text for *_, text in listed(result)]
    assert "kan ik met ideal betalen" in texts  # 0.45
    assert "where is my parcel, my name is NAME" not in texts  # 0.5 and 0.52
    # h1's first turn (0.55) is no longer unsure: only the fallback turn is taken.
    assert [(c.source, c.intent, c.text) for c in result.candidates if c.key.startswith("waar")] == [
        (LOW_CONFIDENCE, "ask_order_status", "Waar blijft mijn geld voor bestelling ORDER_NUMBER")  # the tracker's 0.4
    ]


def test_without_the_wrap_up_table_that_source_is_left_out_with_a_note(tmp_path, nlu_dir):
    seed = Seed(tmp_path, wrapups=False)
    try:
        seed.user("t1", "kan ik met ideal betalen", "ask_payment_methods", 0.45)
        result = run(seed, nlu_dir)
    finally:
        seed.close()
    assert listed(result) == [("ask_payment_methods", "nl", LOW_CONFIDENCE, "kan ik met ideal betalen")]
    assert result.notes == [
        "handoff database: no handoff_wrapups table (no wrap-up recorded yet): "
        "messages the bot misunderstood are left out"
    ]


def test_either_store_may_be_missing(seed, nlu_dir):
    seed_everything(seed)
    only_handoffs = collect(seed.handoff, None, now=NOW, nlu_dir=nlu_dir)
    only_tracker = collect(None, seed.tracker, now=NOW, nlu_dir=nlu_dir)
    assert {c.source for c in only_handoffs.candidates} == {MISUNDERSTOOD}
    assert {c.source for c in only_tracker.candidates} == {FALLBACK, LOW_CONFIDENCE}
    assert "tracker store: not available" in only_handoffs.notes[0]
    assert "handoff database: not available" in only_tracker.notes[0]


# -- which turns of a misunderstood handoff ----------------------------------------------------------


def test_the_trigger_turn_is_taken_and_earlier_turns_while_the_bot_kept_getting_them_wrong():
    transcript = [
        turn("what time do you open", "ask_opening_hours", 0.97),
        turn("my parcel came broken", "ask_returns", 0.9),
        turn("it is damaged", "ask_returns", 0.85),
        turn("this is useless", "express_frustration", 0.9),
        turn("agent please", "request_human", 0.99),
    ]
    taken = misunderstood_turns(transcript, "complaint")
    assert [t["text"] for t in taken] == ["my parcel came broken", "it is damaged"]


def test_a_trigger_turn_the_bot_had_right_gives_nothing():
    assert misunderstood_turns([turn("where is my refund", "ask_refund_status", 0.9)], "ask_refund_status") == []
    unsure = misunderstood_turns([turn("where is my refund", "ask_refund_status", 0.4)], "ask_refund_status")
    assert [t["text"] for t in unsure] == ["where is my refund"]


def test_a_request_for_a_person_is_taken_when_the_agent_says_that_was_the_intent():
    taken = misunderstood_turns([turn("can i talk to someone", "ask_account", 0.7)], "request_human")
    assert [t["text"] for t in taken] == ["can i talk to someone"]


# -- masking -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, names, masked",
    [
        ("mail me at Jan.de.Vries@Example.NL please", (), "mail me at EMAIL please"),
        ("bel me op 06-12345678", (), "bel me op PHONE"),
        ("call +31 (0)20 123 4567", (), "call PHONE"),
        ("my number is 0612345678", (), "my number is PHONE"),
        ("order #12345 is late", (), "order ORDER_NUMBER is late"),
        ("bestelling NW-123456 kwijt", (), "bestelling ORDER_NUMBER kwijt"),
        ("order 100342 and 12345678", (), "order ORDER_NUMBER and ORDER_NUMBER"),
        ("delivered on 12-05-2024 at 10:30", (), "delivered on 12-05-2024 at 10:30"),
        ("order 1234 is small", (), "order 1234 is small"),
        ("my name is Ada Lovelace and i need help", (), "my name is NAME and i need help"),
        ("Mijn naam is Jan de Vries, bestelling kwijt", (), "Mijn naam is NAME, bestelling kwijt"),
        ("ik ben Sanne", (), "ik ben NAME"),
        ("ik ben boos", (), "ik ben boos"),
        ("hi ada here, ADA LOVELACE", ("Ada Lovelace",), "hi NAME here, NAME"),
        ("de pakket van Jan de Vries", ("Jan de Vries",), "de pakket van NAME"),
    ],
)
def test_masking(text, names, masked):
    assert mask(text, names) == masked


def test_normalised_text_ignores_case_punctuation_and_spaces():
    assert normalise("  Where is my parcel?!  My   name…") == "where is my parcel my name"
    assert candidate_id("ask_delivery", "en", "Where is it?") == candidate_id("ask_delivery", "en", "where is it")
    assert candidate_id("ask_delivery", "en", "where is it") != candidate_id("ask_delivery", "nl", "where is it")


def test_training_examples_are_read_masked_and_without_entity_markup(nlu_dir):
    assert training_examples(nlu_dir) == {
        "what are your opening hours",
        "cancel order order number",
        "my email is email",
    }


def test_the_projects_own_training_data_is_deduplicated_against(seed):
    seed.user("t1", "What are your opening hours??", "ask_opening_hours", 0.4)
    seed.user("t1", "what are ur opening hours on sunday mornings", "ask_opening_hours", 0.4)
    result = collect(None, seed.tracker, now=NOW)  # data/nlu
    assert [c.text for c in result.candidates] == ["what are ur opening hours on sunday mornings"]
    assert result.in_training_data == 1


def test_text_is_made_one_plain_line():
    seed_text = "see [this](url)\n{x}\tnow"
    assert review.example_line(seed_text) == "see (this)(url) (x) now"


# -- decisions -----------------------------------------------------------------------------------------


def test_rejected_candidates_are_left_out_and_accepted_ones_marked(seed, nlu_dir):
    seed_everything(seed)
    everything = run(seed, nlu_dir)
    parcel = next(c for c in everything.candidates if c.intent == "ask_order_status")
    ideal = next(c for c in everything.candidates if c.intent == "ask_payment_methods")

    result = run(seed, nlu_dir, decisions={parcel.id: REJECT, ideal.id: ACCEPT, "unknown": REJECT})

    assert parcel.id not in {c.id for c in result.candidates}
    assert len(result.candidates) == len(everything.candidates) - 1
    assert result.rejected == 1
    assert result.get(ideal.id).decision == ACCEPT
    text = to_yaml(result, generated_at=NOW)
    assert "where is my parcel" not in text
    assert "  # ask_payment_methods · Dutch (nl) · accepted on the Review page: 1 low confidence\n" in text


# -- the YAML file -------------------------------------------------------------------------------------


def test_the_file_groups_by_intent_and_language(seed, nlu_dir):
    seed_everything(seed)
    text = to_yaml(run(seed, nlu_dir), generated_at=NOW)
    document = yaml.safe_load(text)
    assert document["version"] == "3.1"
    assert [block["intent"] for block in document["nlu"]] == [
        "ask_delivery",
        "ask_order_status",
        "ask_payment_methods",
        "ask_refund_status",
        "change_address",
    ]
    assert document["nlu"][3]["examples"] == (
        "- waar blijft mijn geld voor bestelling ORDER_NUMBER?\n"
        "- mijn geld terug van ORDER_NUMBER aub, ik ben NAME\n"
    )
    assert "  # ask_refund_status · Dutch (nl) · agent wrap-up: the bot misunderstood: 2 misunderstood\n" in text
    assert "  # ask_delivery · Dutch (nl) · model's label, to check: 1 fallback\n" in text
    assert "# 6 candidates; left out: 2 already in the training data,\n" in text


def test_an_empty_review_is_an_empty_training_file():
    text = to_yaml(review.Review(since=NOW), generated_at=NOW)
    assert yaml.safe_load(text) == {"version": "3.1", "nlu": []}


def _rasa_validate(tmp_path: Path, candidates: str) -> subprocess.CompletedProcess:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(PROJECT_ROOT / "data", project / "data")
    for name in ("domain.yml", "config.yml"):
        shutil.copy(PROJECT_ROOT / name, project / name)
    (project / "data" / "nlu" / "candidates.yml").write_text(candidates, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "RASA_TELEMETRY_ENABLED": "false"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "rasa"), "data", "validate", "--fail-on-warning", "--quiet"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_rasa_data_validate_accepts_the_file_beside_the_projects_data(seed, nlu_dir, tmp_path):
    seed_everything(seed)
    # Text that would be markup or break the block if written as typed.
    seed.user("t9", "refund [now](please) {x}: #12345 ** -- 'quoted' \"too\" é ü", "ask_refund_status", 0.3)
    result = run(seed, PROJECT_ROOT / "data" / "nlu")
    # An accepted one, so that every kind of block is there.
    result.candidates[0].decision = ACCEPT
    text = to_yaml(result, generated_at=NOW)
    assert "refund (now)(please) (x): ORDER_NUMBER ** -- 'quoted' \"too\" é ü" in text

    completed = _rasa_validate(tmp_path, text)

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]


# -- the command ---------------------------------------------------------------------------------------


def test_the_command_writes_the_file_and_prints_the_counts(seed, nlu_dir, tmp_path, capsys, monkeypatch):
    seed_everything(seed)
    monkeypatch.setattr(review.time, "time", lambda: NOW)
    out = tmp_path / "out" / "candidates.yml"
    decisions = tmp_path / "helpdesk.db"
    engine = create_db_engine(f"sqlite:///{decisions}")
    from helpdesk.review import ReviewDecision

    ReviewDecision.__table__.create(engine)
    rejected = candidate_id("ask_payment_methods", "nl", "kan ik met ideal betalen")
    with engine.begin() as connection:
        connection.execute(
            ReviewDecision.__table__.insert().values(
                candidate_id=rejected, decision="reject", decided_by="grace", decided_at=sa.func.now()
            )
        )
    engine.dispose()

    code = review_cli.main(
        [
            "--tracker-url", seed.tracker_url,
            "--database-url", seed.handoff_url,
            "--helpdesk-database-url", f"sqlite:///{decisions}",
            "--nlu", str(nlu_dir),
            "--out", str(out),
        ]
    )

    printed = capsys.readouterr().out
    assert code == 0
    assert "  messages found: 4 misunderstood, 1 fallback, 5 low confidence\n" in printed
    assert "  candidates: 3 misunderstood, 1 fallback, 1 low confidence (5 in all)\n" in printed
    assert "1 rejected on the Review page" in printed
    assert "  misunderstood   ask_refund_status            nl           2\n" in printed
    assert f"Written to {out}" in printed
    document = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert len(document["nlu"]) == 4
    assert "ideal" not in out.read_text(encoding="utf-8")


def test_the_command_says_what_is_missing(tmp_path, capsys):
    code = review_cli.main(
        [
            "--tracker-url", f"sqlite:///{tmp_path / 'none.db'}",
            "--database-url", f"sqlite:///{tmp_path / 'nothing.db'}",
            "--no-helpdesk",
            "--out", str(tmp_path / "c.yml"),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "does not exist: nothing stored there" in printed
    assert "not available" not in printed  # said once
    assert yaml.safe_load((tmp_path / "c.yml").read_text()) == {"version": "3.1", "nlu": []}
    assert review_cli.main(["--threshold", "2"]) == 2


def test_the_command_runs_as_a_module(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "handoff.tools.review", "--help"], capture_output=True, text=True, cwd=PROJECT_ROOT
    )
    assert completed.returncode == 0 and "--threshold" in completed.stdout


# -- the tracker store's URL -----------------------------------------------------------------------------


def test_the_tracker_store_url_from_endpoints(tmp_path, monkeypatch):
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: var/rasa.db\n")
    assert tracker_store_url(endpoints) == f"sqlite:///{PROJECT_ROOT / 'var' / 'rasa.db'}"
    monkeypatch.setenv("DB_PASSWORD", "s3cret")
    endpoints.write_text(
        "tracker_store:\n  type: handoff.server.tracker_store.HandoffSQLTrackerStore\n  dialect: postgresql\n"
        "  url: db.example:5433\n  db: rasa\n  username: rasa\n  password: ${DB_PASSWORD}\n"
    )
    assert tracker_store_url(endpoints) == "postgresql://rasa:s3cret@db.example:5433/rasa"
    endpoints.write_text("tracker_store:\n  type: mongod\n")
    assert tracker_store_url(endpoints) is None
    endpoints.write_text("action_endpoint:\n  url: x\n")
    assert tracker_store_url(endpoints) is None
    assert tracker_store_url() == f"sqlite:///{PROJECT_ROOT / 'var' / 'rasa.db'}"  # the project's


def test_the_defaults():
    assert review.DEFAULT_THRESHOLD == 0.6
    assert review.DEFAULT_DAYS == 30
    assert review_cli.DEFAULT_OUT == PROJECT_ROOT / "results" / "review" / "candidates.yml"


# -- with the handoff store's own API ----------------------------------------------------------------


@pytest.mark.skipif(not hasattr(HandoffStore, "record_wrap_up"), reason="the store records no wrap-ups yet")
def test_a_handoff_wrapped_up_through_the_store_becomes_a_candidate(tmp_path, nlu_dir):
    url = f"sqlite:///{tmp_path / 'handoff.db'}"
    store = HandoffStore(url)
    transcript = [
        turn("Ada here, my package from order 100777 arrived broken", "ask_delivery", 0.64),
        turn("Sorry to hear that! Deliveries take 2 days.", role="bot"),
        turn("get me a human", "request_human", 0.99),
    ]
    payload = new_event(
        "handoff.requested",
        "5b0c6a7e-0000-4000-8000-000000000001",
        "conv-1",
        reason="fallback",
        priority="normal",
        queue="support",
        language="en",
        customer={"name": "Ada Lovelace", "email": "ada@example.com"},
        transcript=transcript,
    )
    store.create_handoff(payload, now=NOW - 3600)
    store.record_wrap_up(
        payload["handoff_id"],
        "conv-1",
        {"outcome": "resolved", "why": "bot_misunderstood", "intent": "complaint", "new_topic": False},
        agent="grace",
        now=NOW - 600,
    )
    engine = create_db_engine(url)
    try:
        result = collect(engine, None, now=NOW, nlu_dir=nlu_dir)
    finally:
        engine.dispose()
        store.close()
    assert listed(result) == [("complaint", "en", MISUNDERSTOOD, "NAME here, my package from order ORDER_NUMBER arrived broken")]
