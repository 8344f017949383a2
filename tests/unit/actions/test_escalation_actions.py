import time

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.escalation_actions import ActionAssessTurn, ActionDeclineHandoff, ActionOfferHandoff


def user(text, intent, ts=100.0, confidence=0.9):
    return {"event": "user", "text": text, "timestamp": ts, "parse_data": {"intent": {"name": intent, "confidence": confidence}}, "metadata": {}}


def bot(text, ts=100.5):
    return {"event": "bot", "text": text, "timestamp": ts}


def action(name, ts=100.4):
    return {"event": "action", "name": name, "timestamp": ts}


def tracker(events, sender="c-1", paused=False, active_loop=None, **slots):
    latest = next((e["parse_data"] | {"text": e["text"]} for e in reversed(events) if e["event"] == "user"), {})
    return Tracker(sender, {"language": "en", **slots}, latest, events, paused, None, active_loop or {}, "action_listen")


def slots(events):
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


async def run(action_class, t):
    dispatcher = CollectingDispatcher()
    return await action_class().run(dispatcher, t, {}), dispatcher


async def test_language_follows_the_customer():
    events, _ = await run(ActionAssessTurn, tracker([user("Ik wil graag weten waar mijn pakket is", "ask_order_status")]))
    assert slots(events)["language"] == "nl"
    events, _ = await run(ActionAssessTurn, tracker([user("ok", "affirm")], language="nl"))
    assert "language" not in slots(events)  # too short to tell: stays Dutch


async def test_explicit_frustration_is_an_offer():
    events, _ = await run(ActionAssessTurn, tracker([user("how do returns work", "ask_returns", 100), bot("..."), user("this doesn't help", "express_frustration", 101)]))
    assert slots(events)["escalation"] == "offer"
    assert slots(events)["escalation_trigger"] == "frustration"
    assert "explicit_frustration" in slots(events)["escalation_signals"]


async def test_frustration_plus_capitals_hands_off():
    history = [user("where is my order", "ask_order_status", 100), bot("Track it here"), user("THIS DOES NOT HELP AT ALL", "express_frustration", 101)]
    events, _ = await run(ActionAssessTurn, tracker(history))
    assert slots(events)["escalation"] == "handoff"
    assert set(slots(events)["escalation_signals"]) >= {"explicit_frustration", "caps"}


async def test_calm_customer_no_escalation():
    events, _ = await run(ActionAssessTurn, tracker([user("what are your opening hours", "ask_opening_hours")], escalation=None))
    assert slots(events).get("escalation") is None


async def test_paused_conversation_is_only_language_tracked():
    events, _ = await run(ActionAssessTurn, tracker([user("THIS DOES NOT HELP", "express_frustration")], paused=True))
    assert "escalation" not in slots(events)


async def test_no_new_signal_while_answering_a_form_or_an_offer():
    frustrated = [user("useless", "express_frustration", 100)]
    events, _ = await run(ActionAssessTurn, tracker(frustrated, active_loop={"name": "lead_form"}))
    assert slots(events).get("escalation") is None
    offered = [user("useless", "express_frustration", 100), action("action_offer_handoff"), bot("Shall I?"), user("no that's useless", "deny", 101)]
    events, _ = await run(ActionAssessTurn, tracker(offered))
    assert slots(events).get("escalation") is None


async def test_answering_an_offer_keeps_the_signals_that_led_to_it():
    offered = [user("where is it", "ask_order_status", 100), action("action_offer_handoff"), bot("Shall I?"), user("yes", "affirm", 101)]
    events, _ = await run(ActionAssessTurn, tracker(offered, escalation_signals=["many_turns"], escalation="offer"))
    assert "escalation_signals" not in slots(events)
    assert slots(events)["escalation"] is None


async def test_a_restart_or_new_session_command_is_not_a_topic(store):
    await run(ActionAssessTurn, tracker([user("where is my order?", "ask_order_status", time.time())], sender="cmd-1"))
    await run(ActionAssessTurn, tracker([user("/session_start", "session_start", time.time())], sender="cmd-1"))
    again = [{"event": "session_started", "timestamp": time.time()}, user("where is my order?", "ask_order_status", time.time())]
    events, _ = await run(ActionAssessTurn, tracker(again, sender="cmd-1"))
    assert slots(events)["escalation_trigger"] == "repeat_contact"


def offered(trigger, response, ts=100.4):
    """The events of action_offer_handoff offering a person for ``trigger``."""
    return [
        action("action_offer_handoff", ts),
        {"event": "bot", "text": "Shall I?", "timestamp": ts, "metadata": {"utter_action": response}},
        {"event": "slot", "name": "handoff_offered", "value": trigger, "timestamp": ts},
    ]


def declined(ts=101.4):
    return [action("action_decline_handoff", ts), {"event": "slot", "name": "handoff_offered", "value": None, "timestamp": ts}]


async def test_a_declined_trigger_is_not_offered_again_this_session():
    history = [user("when do you deliver", "ask_delivery", 100), bot("a"), user("and on sunday", "ask_delivery", 100 + 16 * 60)]
    history += offered("timeout", "utter_offer_handoff_timeout", 100 + 16 * 60) + [user("no", "deny", 101 + 16 * 60)] + declined(101 + 16 * 60)
    history += [user("and on saturday", "ask_delivery", 100 + 17 * 60)]
    events, _ = await run(ActionAssessTurn, tracker(history))
    assert slots(events).get("escalation") is None


async def test_a_no_lasts_for_the_session_only():
    # The slot carried over from an earlier session is not a refusal in this one.
    history = [{"event": "session_started", "timestamp": 99}, {"event": "slot", "name": "handoff_declined", "value": ["frustration"], "timestamp": 99}]
    history += [user("hi", "greet", 99.5), bot("hello"), user("this doesn't help", "express_frustration", 101)]
    events, _ = await run(ActionAssessTurn, tracker(history, handoff_declined=["frustration"]))
    assert slots(events)["escalation"] == "offer"
    assert slots(events)["escalation_trigger"] == "frustration"
    # A "no" said in the previous session is not listed again after a "no" in this one.
    events, _ = await run(ActionDeclineHandoff, tracker(history + offered("complex", "utter_offer_handoff_complex", 102) + [user("no", "deny", 103)], handoff_offered="complex", handoff_declined=["frustration"]))
    assert slots(events)["handoff_declined"] == ["complex"]


async def test_frustrated_again_after_an_ignored_offer_hands_off():
    for language, first, again in (
        ("en", "this doesn't help at all", "still useless, you keep asking me the same"),
        ("nl", "hier heb ik niks aan", "nog steeds nutteloos, je vraagt steeds hetzelfde"),
    ):
        history = [user("where is my order", "ask_order_status", 100), bot("Track it here"), user(first, "express_frustration", 101)]
        history += offered("frustration", "utter_offer_handoff_frustration", 101.5) + [user(again, "express_frustration", 102)]
        events, _ = await run(ActionAssessTurn, tracker(history, language=language))
        assert slots(events)["escalation"] == "handoff", language
        assert slots(events)["escalation_trigger"] == "frustration"
        assert "explicit_frustration" in slots(events)["escalation_signals"]
        assert "frustrated_after_offer" in slots(events)["escalation_signals"]


async def test_frustrated_again_after_a_declined_offer_hands_off():
    history = [user("where is my order", "ask_order_status", 100), bot("Track it here"), user("this doesn't help", "express_frustration", 101)]
    history += offered("frustration", "utter_offer_handoff_frustration", 101.5) + [user("no", "deny", 102)] + declined(102.5)
    history += [user("how do returns work", "ask_returns", 103), bot("..."), user("this is useless", "express_frustration", 104)]
    events, _ = await run(ActionAssessTurn, tracker(history, handoff_declined=["frustration"]))
    assert slots(events)["escalation"] == "handoff"
    assert slots(events)["escalation_trigger"] == "frustration"


async def test_a_calm_answer_to_an_offer_is_not_a_second_signal():
    history = [user("where is my order", "ask_order_status", 100), bot("Track it here"), user("this doesn't help", "express_frustration", 101)]
    history += offered("frustration", "utter_offer_handoff_frustration", 101.5) + [user("how do returns work", "ask_returns", 102)]
    events, _ = await run(ActionAssessTurn, tracker(history))
    assert slots(events).get("escalation") is None


async def test_an_offer_never_repeats_the_last_one_word_for_word():
    for language in ("en", "nl"):
        history = [user("can I get an engraving", "out_of_scope", 100)] + offered("complex", "utter_offer_handoff_complex", 100.5)
        history += [user("no", "deny", 101)] + declined(101.5) + [user("can you engrave it then", "out_of_scope", 102)]
        events, dispatcher = await run(ActionOfferHandoff, tracker(history, language=language))
        assert dispatcher.messages[0]["response"] == "utter_offer_handoff_again"
        assert events == [SlotSet("handoff_offered", "complex")]
        # after the other wording, the trigger's own offer is not the last one any more
        history += offered("complex", "utter_offer_handoff_again", 102.5) + [user("hmm", "out_of_scope", 103)]
        _, dispatcher = await run(ActionOfferHandoff, tracker(history, language=language))
        assert dispatcher.messages[0]["response"] == "utter_offer_handoff_complex"
    # an offer from an earlier session does not count
    history = [user("engraving?", "out_of_scope", 90)] + offered("complex", "utter_offer_handoff_complex", 90.5)
    history += [{"event": "session_started", "timestamp": 99}, user("engraving?", "out_of_scope", 100)]
    _, dispatcher = await run(ActionOfferHandoff, tracker(history))
    assert dispatcher.messages[0]["response"] == "utter_offer_handoff_complex"


def test_both_wordings_of_an_offer_differ_in_both_languages():
    import yaml

    with open("domain.yml", encoding="utf-8") as domain:
        responses = yaml.safe_load(domain)["responses"]
    for name in ("utter_offer_handoff_complex", "utter_offer_handoff_frustration", "utter_offer_handoff_timeout", "utter_offer_handoff_repeat_contact"):
        for first, again in zip(responses[name], responses["utter_offer_handoff_again"], strict=True):
            assert first.get("condition") == again.get("condition")
            assert first["text"] != again["text"]


async def test_a_long_unsolved_conversation_offers_a_person():
    history = []
    for turn in range(12):
        history += [user(f"question {turn} about delivery", "ask_delivery", 100 + turn * 10), bot("answer", 101 + turn * 10)]
    events, _ = await run(ActionAssessTurn, tracker(history))
    assert slots(events)["escalation_trigger"] in ("timeout", "frustration")
    short = [user("when do you deliver", "ask_delivery", 100), bot("a"), user("and on sunday", "ask_delivery", 100 + 16 * 60)]
    events, _ = await run(ActionAssessTurn, tracker(short))
    assert slots(events)["escalation_trigger"] == "timeout"
    assert slots(events)["escalation_signals"] == ["long_conversation"]


async def test_coming_back_about_the_same_unresolved_issue(store):
    first = [user("my refund hasn't arrived", "ask_returns", time.time())]
    await run(ActionAssessTurn, tracker(first, sender="back-1"))
    # a new session, the same issue
    second = [{"event": "session_started", "timestamp": time.time()}, user("still no refund", "ask_returns", time.time())]
    events, _ = await run(ActionAssessTurn, tracker(second, sender="back-1"))
    assert slots(events)["escalation"] == "offer"
    assert slots(events)["escalation_trigger"] == "repeat_contact"
    # a resolved issue is not a repeat contact
    resolved = [user("my refund hasn't arrived", "ask_returns", 1), bot("..."), user("thanks, got it", "thank", 2)]
    await run(ActionAssessTurn, tracker(resolved, sender="back-2"))
    await run(ActionAssessTurn, tracker([resolved[-1]], sender="back-2"))
    events, _ = await run(ActionAssessTurn, tracker([{"event": "session_started", "timestamp": 3}, user("refund question", "ask_returns", 4)], sender="back-2"))
    assert slots(events).get("escalation") is None


async def test_offer_says_the_triggers_offer_and_remembers_it():
    events, dispatcher = await run(ActionOfferHandoff, tracker([user("can I get a custom engraving", "out_of_scope")]))
    assert dispatcher.messages[0]["response"] == "utter_offer_handoff_complex"
    assert events == [SlotSet("handoff_offered", "complex")]
    events, dispatcher = await run(ActionOfferHandoff, tracker([user("meh", "deny")], escalation="offer", escalation_trigger="timeout"))
    assert dispatcher.messages[0]["response"] == "utter_offer_handoff_timeout"


async def test_declining_is_remembered():
    history = [user("long", "ask_delivery", 100)] + offered("timeout", "utter_offer_handoff_timeout") + [user("no", "deny", 101)] + declined()
    history += [user("engraving?", "out_of_scope", 102)] + offered("complex", "utter_offer_handoff_complex", 102.5) + [user("no thanks", "deny", 103)]
    events, dispatcher = await run(ActionDeclineHandoff, tracker(history, handoff_offered="complex", handoff_declined=["timeout"]))
    assert dispatcher.messages[0]["response"] == "utter_offer_declined"
    assert slots(events)["handoff_declined"] == ["timeout", "complex"]
    assert slots(events)["handoff_offered"] is None


async def test_a_sensitive_intent_below_its_min_confidence_is_asked_first():
    events, _ = await run(ActionAssessTurn, tracker([user("how do I get a copy of my bill", "money_trouble", confidence=0.6)]))
    assert slots(events)["escalation"] == "confirm"
    assert slots(events)["escalation_trigger"] == "money_trouble"
    assert slots(events)["escalation_signals"] == ["low_confidence"]


async def test_a_confident_sensitive_intent_hands_off_unasked():
    events, _ = await run(ActionAssessTurn, tracker([user("I can't pay my invoice, I lost my job", "money_trouble", confidence=0.97)]))
    assert slots(events).get("escalation") is None  # the rule intent → action_handoff decides


async def test_the_confirming_question_is_the_triggers_own_in_both_languages():
    t = tracker([user("weet niet of ik kan betalen", "money_trouble", confidence=0.6)], escalation="confirm", escalation_trigger="money_trouble", language="nl")
    events, dispatcher = await run(ActionOfferHandoff, t)
    assert dispatcher.messages[0]["response"] == "utter_confirm_handoff_money_trouble"
    assert slots(events)["handoff_offered"] == "money_trouble"


async def test_frustration_at_handoff_level_wins_over_a_confirming_question():
    history = [user("where is my order", "ask_order_status", 100), bot("Track it here"), user("THIS DOES NOT HELP, I WANT TO COMPLAIN", "complaint", 101, confidence=0.55)]
    events, _ = await run(ActionAssessTurn, tracker(history))
    assert slots(events)["escalation"] == "handoff"
