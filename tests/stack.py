"""Starts the real Rasa server, action server and (optionally) the embedded helpdesk on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from handoff.exposure import cors_origins
from handoff.server.action_server import action_token
from handoff.settings import PROJECT_ROOT
from tests.support import TEST_SECRET, signed

MODEL = PROJECT_ROOT / "models" / "handoff.tar.gz"
BIN = Path(sys.executable).parent
#: Who may sign in to the embedded helpdesk (display names Sanne and Piet); HELPDESK_AGENTS.
HELPDESK_AGENTS = "sanne:sanne-e2e-password,piet:piet-e2e-password,standby:standby-e2e-password"
#: The clock of business hours in the stacks (HANDOFF_NOW): a Monday morning, when every queue of
#: handoff_rules.yml is open. Tests of other moments pass their own.
OPEN_HOURS_NOW = "2026-12-07T10:00:00+01:00"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """One running assistant: Rasa server + action server (+ embedded helpdesk)."""

    def __init__(
        self,
        workdir: Path,
        webhook_url: str | None = None,
        with_helpdesk: bool = False,
        with_webchat: bool = False,
        helpdesk_agents: str = HELPDESK_AGENTS,
        model: Path = MODEL,
        rasa_auth_token: str | None = None,
        agents_available: bool = True,
        **env: str,
    ) -> None:
        if not model.exists():
            raise RuntimeError(f"no trained model at {model}: run `make train` first")
        self.model = model
        # With a token, Rasa's HTTP API (/status, /conversations/...) wants it as ?token=.
        self.rasa_auth_token = rasa_auth_token
        self.api_params = {"token": rasa_auth_token} if rasa_auth_token else {}
        self._token_query = f"?token={rasa_auth_token}" if rasa_auth_token else ""
        self.workdir = workdir
        self.rasa_port, self.actions_port, self.helpdesk_port = free_port(), free_port(), free_port()
        self.rasa_url = f"http://127.0.0.1:{self.rasa_port}"
        self.helpdesk_url = f"http://127.0.0.1:{self.helpdesk_port}"
        self.webchat_port = free_port()
        self.webchat_url = f"http://127.0.0.1:{self.webchat_port}"
        self.env = {
            **os.environ,
            "HANDOFF_ENV": "test",
            "HELPDESK_SECRET": TEST_SECRET,
            "HANDOFF_VAR_DIR": str(workdir / "var"),
            "RASA_PORT": str(self.rasa_port),
            "ACTIONS_PORT": str(self.actions_port),
            "HELPDESK_PORT": str(self.helpdesk_port),
            "HELPDESK_AGENTS": helpdesk_agents,
            "WEBCHAT_PORT": str(self.webchat_port),
            "HANDOFF_OUTBOX_POLL_INTERVAL": "0.3",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "RASA_TELEMETRY_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
            "HANDOFF_NOW": OPEN_HOURS_NOW,
            **env,
        }
        # What scripts/run.sh exports: the token Rasa sends the action server (endpoints.yml).
        self.actions_token = self.env["ACTIONS_TOKEN"] = action_token(self.env)
        self.actions_url = f"http://127.0.0.1:{self.actions_port}"
        if webhook_url:
            self.env["HELPDESK_WEBHOOK_URL"] = webhook_url
        else:
            self.env.pop("HELPDESK_WEBHOOK_URL", None)
        (workdir / "var").mkdir(parents=True, exist_ok=True)
        # The project's endpoints, with this stack's own tracker database.
        self.endpoints = workdir / "endpoints.yml"
        project_endpoints = (PROJECT_ROOT / "endpoints.yml").read_text()
        if "db: var/rasa.db" not in project_endpoints:
            raise RuntimeError("endpoints.yml no longer has `db: var/rasa.db`: update tests/stack.py")
        self.endpoints.write_text(project_endpoints.replace("db: var/rasa.db", f"db: {workdir / 'var' / 'rasa.db'}"))
        # The console's Reports and Review pages read the tracker store this stack's Rasa uses.
        self.env["HANDOFF_ENDPOINTS"] = str(self.endpoints)
        self.with_helpdesk = with_helpdesk
        self.with_webchat = with_webchat
        # With the embedded helpdesk, one agent ("standby") is available unless a test says
        # otherwise: signed in is not available, and nobody available ends a handoff at once.
        self.agents_available = agents_available
        self.standby: requests.Session | None = None
        self.processes: dict[str, subprocess.Popen] = {}
        self.commands: dict[str, tuple[str, ...]] = {}  # how each process was started (for restart)

    def _spawn(self, name: str, *args: str, append_log: bool = False) -> None:
        log = open(self.workdir / f"{name}.log", "ab" if append_log else "wb")  # noqa: SIM115 - closed with the process
        self.commands[name] = args
        self.processes[name] = subprocess.Popen(
            args, cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start(self, timeout: float = 240) -> Stack:
        started = time.monotonic()
        self._spawn("actions", str(BIN / "python"), "-m", "handoff.server.action_server", "--port", str(self.actions_port))
        if self.with_helpdesk:
            self._spawn("helpdesk", str(BIN / "python"), "-m", "helpdesk")
        if self.with_webchat:
            self._spawn("webchat", str(BIN / "python"), "-m", "webchat")
        self._spawn(
            "rasa", str(BIN / "rasa"), "run", "--enable-api", "--interface", "127.0.0.1", "--port", str(self.rasa_port),
            "--model", str(self.model), "--credentials", "credentials.yml", "--endpoints", str(self.endpoints),
            *(("--auth-token", self.rasa_auth_token) if self.rasa_auth_token else ()),
            "--cors", *cors_origins(self.env),  # as scripts/run.sh: the web chat's origins
        )
        checks = {"rasa": f"{self.rasa_url}/status{self._token_query}", "actions": f"http://127.0.0.1:{self.actions_port}/health"}
        if self.with_helpdesk:
            checks["helpdesk"] = f"{self.helpdesk_url}/health"
        if self.with_webchat:
            checks["webchat"] = f"{self.webchat_url}/health"
        pending = dict(checks)
        while pending:
            for name, url in list(pending.items()):
                if self.processes[name].poll() is not None:
                    raise RuntimeError(f"{name} exited early:\n{self.log(name)}")
                try:
                    if requests.get(url, timeout=2).status_code == 200:
                        del pending[name]
                except requests.RequestException:
                    pass
            if time.monotonic() - started > timeout:
                self.stop()
                raise RuntimeError(f"not ready in {timeout} s: {sorted(pending)}\n{self.log('rasa')}")
            time.sleep(0.5)
        if self.with_helpdesk and self.agents_available:
            self.standby = self.sign_in("standby")
            self.set_presence(self.standby, "available")
        self.ready_seconds = time.monotonic() - started
        return self

    def set_presence(self, session: requests.Session, status: str) -> None:
        """Set a signed-in agent's presence in the console (available, away or offline)."""
        answer = session.post(
            self.helpdesk_url + "/presence",
            data={"status": status},
            headers={"Origin": self.helpdesk_url},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code in (200, 303), (answer.status_code, answer.text[:300])

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, 15)
                except ProcessLookupError:
                    pass
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)

    def health_url(self, name: str) -> str:
        """The URL that answers 200 once process ``name`` is ready (as ``start`` waits for)."""
        return {
            "rasa": f"{self.rasa_url}/status{self._token_query}",
            "actions": f"http://127.0.0.1:{self.actions_port}/health",
            "helpdesk": f"{self.helpdesk_url}/health",
            "webchat": f"{self.webchat_url}/health",
        }[name]

    def kill(self, name: str, sig: int = 9) -> int | None:
        """Send ``sig`` (default SIGKILL: no shutdown code runs) to process ``name`` and its group;
        wait for it to end and return its exit code."""
        process = self.processes[name]
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        return process.wait(timeout=30)

    def restart(self, name: str, timeout: float = 240) -> float:
        """Start process ``name`` again with the same command, ports and environment (after
        :meth:`kill`); wait for its health URL and return how many seconds that took."""
        if self.processes[name].poll() is None:
            raise RuntimeError(f"{name} is still running: kill it first")
        started = time.monotonic()
        with open(self.workdir / f"{name}.log", "ab") as log:
            log.write(f"\n===== restarted {name} =====\n".encode())
        self._spawn(name, *self.commands[name], append_log=True)
        url = self.health_url(name)
        while True:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited early after a restart:\n{self.log(name)}")
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return time.monotonic() - started
            except requests.RequestException:
                pass
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"{name} not ready {timeout} s after a restart:\n{self.log(name)}")
            time.sleep(0.5)

    # -- talking to it like a channel does -------------------------------------------------------

    def say(self, sender: str, text: str, metadata: dict | None = None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"sender": sender, "message": text}
        if metadata:
            body["metadata"] = metadata
        answer = requests.post(f"{self.rasa_url}/webhooks/rest/webhook", json=body, timeout=60)
        answer.raise_for_status()
        return answer.json()

    def tracker(self, sender: str) -> dict[str, Any]:
        answer = requests.get(f"{self.rasa_url}/conversations/{sender}/tracker", params=self.api_params, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def sign_in(self, login: str = "sanne") -> requests.Session:
        """A browser session signed in to the embedded helpdesk as ``login`` (HELPDESK_AGENTS above)."""
        password = dict(entry.split(":", 1) for entry in HELPDESK_AGENTS.split(","))[login]
        session = requests.Session()
        answer = session.post(
            self.helpdesk_url + "/login", data={"login": login, "password": password}, allow_redirects=False, timeout=10
        )
        assert answer.status_code == 303, answer.status_code
        return session

    def helpdesk_event(self, body: dict | bytes, headers: dict[str, str] | None = None) -> requests.Response:
        raw, signed_headers = signed(body)
        return requests.post(
            f"{self.rasa_url}/webhooks/helpdesk/webhook", data=raw, headers=headers or signed_headers, timeout=60
        )
