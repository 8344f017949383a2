"""handoff.tools.scaled (make run-scaled): its environment, and what it says when PostgreSQL or Redis is missing.

The rendered haproxy configurations are checked in tests/unit/deploy; the deployment itself runs in
tests/e2e/test_scaled.py.
"""

from __future__ import annotations

import socket

import pytest

from handoff.tools import scaled


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_the_environment_has_development_defaults_and_the_balancers_addresses():
    topology = scaled.Topology.on_ports(2, base_port=6100, rasa_port=6005, actions_port=6055, lock_lifetime=20)
    env = scaled.scaled_environment({"POSTGRES_DB": "shop"}, topology)
    assert env["POSTGRES_DB"] == "shop" and env["POSTGRES_HOST"] == "127.0.0.1" and env["REDIS_PORT"] == "6379"
    assert env["HANDOFF_DATABASE_URL"] == "postgresql://postgres@127.0.0.1:5432/shop"
    assert env["ACTIONS_URL"] == "http://127.0.0.1:6055/webhook"  # through haproxy
    assert env["RASA_URL"] == "http://127.0.0.1:6005" and env["TICKET_LOCK_LIFETIME"] == "20"
    assert env["SOCKETIO_REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert [(r.name, r.port) for r in topology.replicas] == [("rasa1", 6101), ("rasa2", 6102)]
    assert topology.action_servers[0].port == 6100 and topology.server_timeout == 50


def test_missing_postgresql_and_redis_are_named_with_what_to_do():
    topology = scaled.Topology.on_ports(2)
    env = scaled.scaled_environment(
        {"POSTGRES_PORT": str(closed_port()), "REDIS_PORT": str(closed_port()), "HANDOFF_DATABASE_URL": "sqlite:///var/handoff.db"},
        topology,
    )
    problems = scaled.check_services(env)
    assert len(problems) == 4, problems
    postgres, locks, sockets, database = problems
    assert postgres.startswith("PostgreSQL is not reachable at 127.0.0.1:") and "POSTGRES_HOST" in postgres
    assert locks.startswith("Redis is not reachable") and "conversation locks" in locks
    assert "socket.io (SOCKETIO_REDIS_URL)" in sockets
    assert "HANDOFF_DATABASE_URL must be a PostgreSQL URL" in database


@pytest.mark.postgres
def test_a_missing_database_is_named_with_the_createdb_command():
    env = scaled.scaled_environment({"POSTGRES_DB": "handoff_no_such_database_16"}, scaled.Topology.on_ports(1))
    [problem] = [p for p in scaled.check_services(env) if p.startswith("PostgreSQL")]
    assert "has no database 'handoff_no_such_database_16'" in problem and "createdb -h 127.0.0.1" in problem


def test_run_scaled_stops_with_the_reason(monkeypatch, capsys):
    monkeypatch.setenv("POSTGRES_PORT", str(closed_port()))
    monkeypatch.setenv("REDIS_PORT", str(closed_port()))
    monkeypatch.setenv("RASA_MODEL", __file__)  # any existing file: the model is checked first
    assert scaled.main(["--replicas", "2"]) == 2
    err = capsys.readouterr().err
    assert "run-scaled: cannot start the scaled deployment:" in err and "PostgreSQL is not reachable" in err


def test_run_scaled_refuses_a_public_address_in_development(monkeypatch, capsys):
    monkeypatch.setenv("RASA_HOST", "0.0.0.0")
    assert scaled.main(["--replicas", "2"]) == 2
    assert "RASA_HOST=0.0.0.0 exposes" in capsys.readouterr().err


def test_zero_replicas_is_refused():
    with pytest.raises(scaled.DeploymentError, match="REPLICAS must be 1 or more"):
        scaled.Topology.on_ports(0)
