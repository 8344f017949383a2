from __future__ import annotations

import pytest

from handoff import settings as settings_module
from handoff import store as store_module
from tests.support import TEST_SECRET, Receiver


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Every test gets its own var/ directory, secret and fresh settings."""
    monkeypatch.setenv("HANDOFF_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("HELPDESK_SECRET", TEST_SECRET)
    monkeypatch.setenv("HANDOFF_ENV", "test")
    for name in ("HANDOFF_DATABASE_URL", "HELPDESK_DATABASE_URL", "HELPDESK_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    settings_module.get_settings.cache_clear()
    store_module._stores.clear()
    yield
    for store in store_module._stores.values():
        store.close()
    store_module._stores.clear()
    settings_module.get_settings.cache_clear()


@pytest.fixture
def receiver(monkeypatch):
    """A signed helpdesk webhook on loopback, configured as HELPDESK_WEBHOOK_URL."""
    r = Receiver()
    monkeypatch.setenv("HELPDESK_WEBHOOK_URL", r.url)
    settings_module.get_settings.cache_clear()
    yield r
    r.close()


@pytest.fixture
def settings():
    return settings_module.get_settings()


@pytest.fixture
def store(settings):
    return store_module.get_store(settings.database_url)
