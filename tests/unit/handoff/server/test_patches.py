"""handoff.server.patches: one place installs every Rasa patch, each with its switch, only on the
pinned Rasa version; the broker and the helpdesk channel both install them."""

import pytest
import rasa
from rasa.core.actions.action import RemoteAction
from rasa.core.policies.rule_policy import RulePolicy
from rasa.shared.core.events import Event

from handoff.server import patches
from handoff.server.broker import HandoffEventBroker
from handoff.server.helpdesk_channel import HelpdeskInput

ORIGINALS = {
    "action_failure": lambda: RemoteAction.__dict__["run"],
    "action_response_validator": lambda: RemoteAction.__dict__["_validate_action_result"],
    "rule_states": lambda: RulePolicy.__dict__["_rule_key_to_state"],
    "rule_index": lambda: RulePolicy.__dict__["_get_possible_keys"],
    "event_classes": lambda: Event.__dict__["resolve_by_type"],
}


@pytest.fixture(autouse=True)
def rasa_own_code():
    patches.uninstall()
    yield
    patches.uninstall()


def test_every_patch_is_listed_with_its_switch_and_in_the_docs():
    assert [p.name for p in patches.PATCHES] == list(ORIGINALS)
    listed = (patches.PROJECT_ROOT / "docs" / "RASA_PATCHES.md").read_text(encoding="utf-8")
    for patch in patches.PATCHES:
        assert patch.switch == "HANDOFF_PATCH_" + patch.name.upper()
        assert patch.switch in listed and patch.replaces.split(" ")[0] in listed


def test_install_puts_every_patch_in_place_once_and_uninstall_restores_rasa():
    before = {name: get() for name, get in ORIGINALS.items()}
    assert patches.install(environ={}) == list(ORIGINALS)
    after = {name: get() for name, get in ORIGINALS.items()}
    assert all(after[name] is not before[name] for name in ORIGINALS)
    patches.install(environ={})
    assert {name: get() for name, get in ORIGINALS.items()} == after
    assert patches.installed() == list(ORIGINALS)
    patches.uninstall()
    assert {name: get() for name, get in ORIGINALS.items()} == before and patches.installed() == []


@pytest.mark.parametrize("name", list(ORIGINALS))
def test_a_switch_turns_one_patch_off(name):
    original = ORIGINALS[name]()
    switch = patches.BY_NAME[name].switch
    on = patches.install(environ={switch: "off"})
    assert name not in on and len(on) == len(ORIGINALS) - 1
    assert ORIGINALS[name]() is original and name not in patches.installed()


def test_switch_values():
    patch = patches.BY_NAME["rule_index"]
    assert not patches.enabled(patch, {"HANDOFF_PATCH_RULE_INDEX": " OFF "})
    assert not patches.enabled(patch, {"HANDOFF_PATCH_RULE_INDEX": "0"})
    assert patches.enabled(patch, {"HANDOFF_PATCH_RULE_INDEX": "on"}) and patches.enabled(patch, {})


def test_the_pin_is_read_from_constraints_and_is_the_installed_rasa():
    assert patches.pinned_rasa_version() == rasa.__version__ == "3.6.21"
    patches.check_rasa_version()


def test_another_rasa_version_is_refused_with_a_clear_error(monkeypatch):
    monkeypatch.setattr(rasa, "__version__", "3.6.22")
    with pytest.raises(patches.RasaVersionError, match=r"Rasa 3\.6\.22 is installed.*Rasa 3\.6\.21.*HANDOFF_PATCH_RULE_INDEX=off"):
        patches.install(environ={})
    assert patches.installed() == []
    # With every patch off nothing of Rasa is touched, so any version runs.
    assert patches.install(environ={p.switch: "off" for p in patches.PATCHES}) == []


def test_a_missing_pin_is_an_error(tmp_path):
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("sanic==21.12.2\n")
    with pytest.raises(patches.RasaVersionError, match="pins no rasa version"):
        patches.pinned_rasa_version(constraints)


def test_the_event_broker_installs_the_patches(settings, store):
    HandoffEventBroker(settings, store, start_worker=False)
    assert patches.installed() == list(ORIGINALS)


def test_the_helpdesk_channel_installs_the_patches():
    async def on_new_message(_message):
        return None

    HelpdeskInput().blueprint(on_new_message)
    assert patches.installed() == list(ORIGINALS)


def test_the_switches_reach_the_servers(monkeypatch, settings, store):
    monkeypatch.setenv("HANDOFF_PATCH_ACTION_FAILURE", "off")
    HandoffEventBroker(settings, store, start_worker=False)
    assert "action_failure" not in patches.installed() and "rule_index" in patches.installed()
