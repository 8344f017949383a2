from __future__ import annotations

import pytest

from handoff import settings as settings_module
from handoff import store as store_module
from tests.stack import OPEN_HOURS_NOW, Stack
from tests.support import TEST_SECRET, Receiver


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Every test gets its own var/ directory, secret and fresh settings."""
    monkeypatch.setenv("HANDOFF_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("HELPDESK_SECRET", TEST_SECRET)
    monkeypatch.setenv("HANDOFF_ENV", "test")
    # Business hours (handoff_rules.yml) are decided on this clock, not the machine's: open.
    monkeypatch.setenv("HANDOFF_NOW", OPEN_HOURS_NOW)
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


# -- end-to-end modules: one running stack per module --------------------------------------------


@pytest.fixture(scope="module")
def helpdesk():
    """A signed webhook receiver standing in for the helpdesk, shared by one test module."""
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    """Extra environment for the module's stack; a module overrides this fixture to set it."""
    return {}


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory, helpdesk, stack_env):
    """The real Rasa server and action server of one test module, delivering to ``helpdesk``."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    running = Stack(tmp_path_factory.mktemp(name), webhook_url=helpdesk.url, **stack_env).start()
    print(f"stack ready in {running.ready_seconds:.1f} s")
    yield running
    running.stop()
