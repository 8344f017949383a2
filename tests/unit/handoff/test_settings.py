import pytest

from handoff.settings import DEVELOPMENT_SECRET, SettingsError, load_settings


def test_defaults_follow_the_contract(monkeypatch):
    for name in ("RASA_PORT", "ACTIONS_PORT", "HELPDESK_PORT", "HELPDESK_WEBHOOK_URL", "RASA_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.rasa_port, settings.actions_port, settings.helpdesk_port) == (5005, 5055, 5080)
    assert settings.helpdesk_webhook_url == "http://127.0.0.1:5080/webhook"
    assert settings.rasa_url == "http://127.0.0.1:5005"
    assert settings.database_url.startswith("sqlite:///")


def test_development_falls_back_to_the_public_secret(monkeypatch):
    monkeypatch.delenv("HELPDESK_SECRET")
    monkeypatch.setenv("HANDOFF_ENV", "development")
    settings = load_settings()
    assert settings.secret == DEVELOPMENT_SECRET and settings.secret_is_default


@pytest.mark.parametrize("secret", ["", DEVELOPMENT_SECRET])
def test_production_refuses_the_default_secret(monkeypatch, secret):
    monkeypatch.setenv("HELPDESK_SECRET", secret)
    monkeypatch.setenv("HANDOFF_ENV", "production")
    with pytest.raises(SettingsError, match="HELPDESK_SECRET"):
        load_settings()


def test_bad_numbers_are_named(monkeypatch):
    monkeypatch.setenv("RASA_PORT", "five")
    with pytest.raises(SettingsError, match="RASA_PORT"):
        load_settings()


def test_retry_max_delay_defaults_to_a_minute_and_must_be_positive(monkeypatch):
    monkeypatch.delenv("HANDOFF_RETRY_MAX_DELAY", raising=False)
    assert load_settings().retry_max_delay == 60.0
    monkeypatch.setenv("HANDOFF_RETRY_MAX_DELAY", "2.5")
    assert load_settings().retry_max_delay == 2.5
    for bad in ("0", "-1"):
        monkeypatch.setenv("HANDOFF_RETRY_MAX_DELAY", bad)
        with pytest.raises(SettingsError, match="HANDOFF_RETRY_MAX_DELAY must be more than 0"):
            load_settings()


def test_production_refuses_a_short_identity_secret(monkeypatch):
    monkeypatch.setenv("HANDOFF_ENV", "production")
    monkeypatch.setenv("HELPDESK_SECRET", "s" * 40)
    monkeypatch.setenv("HANDOFF_IDENTITY_SECRET", "too-short")
    with pytest.raises(SettingsError, match="HANDOFF_IDENTITY_SECRET"):
        load_settings()
    monkeypatch.setenv("HANDOFF_IDENTITY_SECRET", "i" * 32)
    assert load_settings().environment == "production"
