"""Bind addresses and the Rasa server's CORS allow-list (handoff/exposure.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from handoff.exposure import (
    ExposureError,
    bind_host,
    check_bind,
    cors_origins,
    is_loopback,
    main,
)
from handoff.settings import PROJECT_ROOT, SettingsError


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_addresses(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", " ", "192.0.2.2", "10.0.0.1", "2001:db8::1", "no-such-host.invalid"])
def test_addresses_other_machines_reach(host):
    assert not is_loopback(host)


def test_unset_host_is_loopback_in_development():
    assert bind_host("RASA_HOST", {}) == "127.0.0.1"
    assert bind_host("RASA_HOST", {"RASA_HOST": ""}) == "127.0.0.1"
    assert bind_host("ACTIONS_HOST", {"ACTIONS_HOST": "localhost"}) == "localhost"


@pytest.mark.parametrize("env_name", [None, "", "development", "dev", "test", " Development "])
@pytest.mark.parametrize("variable", ["RASA_HOST", "ACTIONS_HOST", "HELPDESK_HOST", "WEBCHAT_HOST"])
def test_a_public_address_is_refused_in_development(variable, env_name):
    environ = {variable: "0.0.0.0"}
    if env_name is not None:
        environ["HANDOFF_ENV"] = env_name
    with pytest.raises(ExposureError) as refused:
        bind_host(variable, environ)
    message = str(refused.value)
    assert message.startswith(f"{variable}=0.0.0.0 exposes ")
    assert "HANDOFF_ENV=production" in message and "ACTIONS_TOKEN" in message


def test_exposure_error_is_a_settings_error():
    # Entry points already print SettingsError plainly and exit non-zero.
    assert issubclass(ExposureError, SettingsError)


def test_any_address_outside_development():
    environ = {"HANDOFF_ENV": "production", "RASA_HOST": "0.0.0.0"}
    assert bind_host("RASA_HOST", environ) == "0.0.0.0"
    check_bind("WEBCHAT_HOST", "192.0.2.2", {"HANDOFF_ENV": "staging"})


def test_cors_defaults_to_the_web_chat_origins():
    assert cors_origins({}) == ["http://127.0.0.1:5090", "http://localhost:5090"]
    assert cors_origins({"WEBCHAT_PORT": "6001"}) == ["http://127.0.0.1:6001", "http://localhost:6001"]


def test_cors_origins_from_the_environment():
    environ = {"RASA_CORS_ORIGINS": "https://shop.example.com, https://chat.example.com:8443/  http://[::1]:5090"}
    assert cors_origins(environ) == ["https://shop.example.com", "https://chat.example.com:8443", "http://[::1]:5090"]


@pytest.mark.parametrize("value", ["*", "https://a.example *", "*,https://a.example"])
def test_cors_wildcard_is_refused(value):
    with pytest.raises(SettingsError, match=r"RASA_CORS_ORIGINS=\* would let every web page"):
        cors_origins({"RASA_CORS_ORIGINS": value})


@pytest.mark.parametrize(
    "origin", ["null", "shop.example.com", "https://*.example.com", "https://a.example/path", "ftp://a.example", "https://a.example?x"]
)
def test_cors_values_that_are_not_origins_are_refused(origin):
    with pytest.raises(SettingsError, match="is not an origin"):
        cors_origins({"RASA_CORS_ORIGINS": origin})


def test_command_line_checks_addresses_and_prints_origins(monkeypatch, capsys):
    monkeypatch.delenv("HANDOFF_ENV", raising=False)
    monkeypatch.delenv("RASA_CORS_ORIGINS", raising=False)
    monkeypatch.setenv("WEBCHAT_PORT", "5999")
    monkeypatch.setenv("RASA_HOST", "127.0.0.1")
    assert main(["--cors-origins", "RASA_HOST", "ACTIONS_HOST"]) == 0
    assert capsys.readouterr().out.split() == ["http://127.0.0.1:5999", "http://localhost:5999"]

    monkeypatch.setenv("ACTIONS_HOST", "0.0.0.0")
    assert main(["--cors-origins", "RASA_HOST", "ACTIONS_HOST"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "ACTIONS_HOST=0.0.0.0 exposes the action server" in captured.err


def test_run_script_refuses_a_public_rasa_host_before_starting_anything(tmp_path):
    """scripts/run.sh checks RASA_HOST (and the others) before it starts a process."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "HANDOFF_VAR_DIR": str(tmp_path / "var"),
        "RASA_HOST": "0.0.0.0",
        "RASA_MODEL": sys.executable,  # any existing file: the model check passes, nothing loads it
    }
    done = subprocess.run(["bash", "scripts/run.sh"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "RASA_HOST=0.0.0.0 exposes the Rasa server" in done.stderr
    assert "==>" not in done.stdout  # nothing was started


def test_run_script_refuses_cors_wildcard(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "HANDOFF_VAR_DIR": str(tmp_path / "var"),
        "RASA_CORS_ORIGINS": "*",
        "RASA_MODEL": sys.executable,
    }
    done = subprocess.run(["bash", "scripts/run.sh"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "RASA_CORS_ORIGINS=* would let every web page" in done.stderr
    assert "==>" not in done.stdout
