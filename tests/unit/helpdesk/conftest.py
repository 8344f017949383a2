"""Fixtures of the embedded helpdesk's tests: the stand-in assistant, the database, signed-in browsers."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.helpdesk_support import ALAN, GRACE, StandInAssistant, make_app, make_settings, sign_in


@pytest.fixture
async def assistant():
    stand_in = StandInAssistant()
    server = TestServer(stand_in.app)
    await server.start_server()
    stand_in.url = str(server.make_url("")).rstrip("/")
    yield stand_in
    await server.close()


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'helpdesk-test.db'}"


@pytest.fixture
async def helpdesk(assistant, database_url):
    """The helpdesk, with a browser signed in as Grace."""
    app = make_app(make_settings(assistant.url), database_url)
    client = TestClient(TestServer(app))
    await client.start_server()
    await sign_in(client, GRACE)
    yield client
    await client.close()


@pytest.fixture
async def alan(helpdesk):
    """A second agent's browser (its own cookies) on the same helpdesk, signed in as Alan."""
    client = TestClient(helpdesk.server)
    await client.start_server()
    await sign_in(client, ALAN)
    yield client
    await client.session.close()
