"""The scaled deployment on one machine: N Rasa replicas behind haproxy, on PostgreSQL and Redis.

``make run-scaled REPLICAS=N`` (scripts/run-scaled.sh) runs ``python -m handoff.tools.scaled``:

- checks that PostgreSQL (conversations, handoff records) and Redis (conversation locks, socket.io)
  answer, and says plainly what is missing when they do not;
- renders ``deploy/haproxy.cfg.j2`` into ``var/scaled/haproxy.cfg`` and has haproxy check it;
- starts the action server, the embedded helpdesk (unless ``HELPDESK_WEBHOOK_URL`` points elsewhere),
  the web chat, N ``rasa run`` processes with endpoints.scaled.yml / credentials.scaled.yml (each on
  its own loopback port: ``SCALED_BASE_PORT`` + 1 … + N; the action server on ``SCALED_BASE_PORT``)
  and haproxy, which listens where one Rasa server would (``RASA_HOST``:``RASA_PORT``) and in front
  of the action server (127.0.0.1:``ACTIONS_PORT``);
- waits until every process answers its health check, then until Ctrl-C; stops them all.

:class:`Deployment` is also what the end-to-end test (tests/e2e/test_scaled.py) and the benchmark
(``scripts/bench.py --replicas``) start.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from handoff.settings import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
HAPROXY_TEMPLATE = DEPLOY / "haproxy.cfg.j2"
DEFAULT_BASE_PORT = 5100
DEFAULT_LOCK_LIFETIME = 60
#: What the scaled endpoints and credentials read (endpoints.scaled.yml, credentials.scaled.yml),
#: with the defaults of a development machine running PostgreSQL and Redis itself.
DEVELOPMENT_DEFAULTS = {
    "POSTGRES_HOST": "127.0.0.1",
    "POSTGRES_PORT": "5432",
    "POSTGRES_DB": "handoff",
    "POSTGRES_USER": "postgres",
    "POSTGRES_PASSWORD": "",
    "REDIS_HOST": "127.0.0.1",
    "REDIS_PORT": "6379",
    "REDIS_DB": "0",
    "REDIS_PASSWORD": "",
    "REDIS_KEY_PREFIX": "handoff",
}
#: Rasa answers ``GET /`` with this once its model is loaded (no token needed).
RASA_HELLO = "Hello from Rasa"


class DeploymentError(RuntimeError):
    """The deployment cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class Server:
    """One process behind haproxy."""

    name: str
    port: int
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class Discovery:
    """Replicas found by DNS (Docker Compose, Kubernetes): ``host:port`` names whose every address
    is a server, up to ``max_servers`` each."""

    rasa: str
    actions: str
    max_servers: int = 10


@dataclass(frozen=True)
class Topology:
    """Where everything listens."""

    replicas: tuple[Server, ...]
    action_servers: tuple[Server, ...]
    host: str = "127.0.0.1"
    actions_host: str = "127.0.0.1"
    rasa_port: int = 5005
    actions_port: int = 5055
    lock_lifetime: int = DEFAULT_LOCK_LIFETIME
    discovery: Discovery | None = None

    @classmethod
    def on_ports(
        cls, replicas: int, base_port: int = DEFAULT_BASE_PORT, ports: list[int] | None = None, **kwargs: Any
    ) -> Topology:
        """``replicas`` Rasa processes on ``base_port`` + 1 …, the action server on ``base_port``
        (or on ``ports``: the action server's first, then one per replica)."""
        if replicas < 1:
            raise DeploymentError(f"REPLICAS must be 1 or more, got {replicas}")
        chosen = ports or [base_port + i for i in range(replicas + 1)]
        return cls(
            replicas=tuple(Server(f"rasa{i + 1}", port) for i, port in enumerate(chosen[1 : replicas + 1])),
            action_servers=(Server("actions1", chosen[0]),),
            **kwargs,
        )

    @property
    def server_timeout(self) -> int:
        # The lock of a replica that died mid-turn expires after lock_lifetime; then the turn runs.
        return self.lock_lifetime + 30


def render_haproxy(topology: Topology, template: Path = HAPROXY_TEMPLATE) -> str:
    """haproxy's configuration for ``topology`` from the template in deploy/."""
    import jinja2

    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    return environment.from_string(template.read_text()).render(
        replicas=topology.replicas,
        action_servers=topology.action_servers,
        host=topology.host,
        actions_host=topology.actions_host,
        rasa_port=topology.rasa_port,
        actions_port=topology.actions_port,
        lock_lifetime=topology.lock_lifetime,
        server_timeout=topology.server_timeout,
        discovery=topology.discovery,
    )


#: The balancer of deploy/compose.yaml (Docker's DNS names the `rasa` service's every container).
COMPOSE_TOPOLOGY = Topology(
    replicas=(), action_servers=(), host="0.0.0.0", actions_host="0.0.0.0",
    discovery=Discovery(rasa="rasa:5005", actions="actions:5055"),
)  # fmt: skip
#: The balancer of deploy/kubernetes/ (headless Services of namespace northwind-handoff).
KUBERNETES_NAMESPACE = "northwind-handoff"
KUBERNETES_TOPOLOGY = Topology(
    replicas=(), action_servers=(), host="0.0.0.0", actions_host="0.0.0.0",
    discovery=Discovery(
        rasa=f"rasa-replicas.{KUBERNETES_NAMESPACE}.svc.cluster.local:5005",
        actions=f"actions-replicas.{KUBERNETES_NAMESPACE}.svc.cluster.local:5055",
    ),
)  # fmt: skip
COMPOSE_HAPROXY = DEPLOY / "haproxy.compose.cfg"
KUBERNETES_HAPROXY = DEPLOY / "kubernetes" / "haproxy.yaml"


def kubernetes_haproxy_configmap(config: str) -> str:
    """deploy/kubernetes/haproxy.yaml's ConfigMap document holding ``config``."""
    body = "".join(f"    {line}\n" if line else "\n" for line in config.splitlines())
    return (
        "# haproxy.cfg, rendered from deploy/haproxy.cfg.j2 (python -m handoff.tools.scaled --write-deploy-configs)\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: haproxy\n"
        f"  namespace: {KUBERNETES_NAMESPACE}\n"
        "data:\n  haproxy.cfg: |\n" + body
    )


def write_deploy_configs() -> list[Path]:
    """Render the template for Docker Compose and Kubernetes into deploy/ (committed files)."""
    COMPOSE_HAPROXY.write_text(render_haproxy(COMPOSE_TOPOLOGY))
    documents = KUBERNETES_HAPROXY.read_text().split("\n---\n") if KUBERNETES_HAPROXY.exists() else [""]
    documents[0] = kubernetes_haproxy_configmap(render_haproxy(KUBERNETES_TOPOLOGY))
    KUBERNETES_HAPROXY.write_text("\n---\n".join(documents))
    return [COMPOSE_HAPROXY, KUBERNETES_HAPROXY]


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if not found:
        raise DeploymentError("haproxy is not installed: run `make haproxy` (Debian's package)")
    return found


def check_haproxy_config(path: Path) -> None:
    """Raise :class:`DeploymentError` with haproxy's own words when it refuses ``path``."""
    checked = subprocess.run([haproxy_binary(), "-c", "-q", "-f", str(path)], capture_output=True, text=True)
    if checked.returncode != 0:
        raise DeploymentError(f"haproxy refuses {path}:\n{checked.stdout}{checked.stderr}")


# -- PostgreSQL and Redis -------------------------------------------------------------------------


def scaled_environment(environ: Mapping[str, str], topology: Topology) -> dict[str, str]:
    """``environ`` with what endpoints.scaled.yml and credentials.scaled.yml read, development
    defaults for what is unset, and the addresses of the balancer."""
    env = dict(environ)
    for name, value in DEVELOPMENT_DEFAULTS.items():
        env.setdefault(name, value)
    if not env.get("HANDOFF_DATABASE_URL"):
        env["HANDOFF_DATABASE_URL"] = postgres_url(env)
    env.setdefault(
        "SOCKETIO_REDIS_URL",
        f"redis://{':' + env['REDIS_PASSWORD'] + '@' if env['REDIS_PASSWORD'] else ''}{env['REDIS_HOST']}:{env['REDIS_PORT']}/{env['REDIS_DB']}",
    )
    balancer = f"http://{_client_host(topology.host)}:{topology.rasa_port}"
    env["RASA_PORT"] = str(topology.rasa_port)
    env["ACTIONS_PORT"] = str(topology.actions_port)
    env["ACTIONS_URL"] = env.get("ACTIONS_URL") or f"http://{_client_host(topology.actions_host)}:{topology.actions_port}/webhook"
    env.setdefault("RASA_URL", balancer)
    env.setdefault("HANDOFF_ENDPOINTS", str(PROJECT_ROOT / "endpoints.scaled.yml"))
    env["TICKET_LOCK_LIFETIME"] = str(topology.lock_lifetime)
    return env


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in {"", "0.0.0.0", "::"} else host


def postgres_url(env: Mapping[str, str]) -> str:
    from sqlalchemy.engine import URL

    return URL.create(
        "postgresql",
        username=env.get("POSTGRES_USER") or None,
        password=env.get("POSTGRES_PASSWORD") or None,
        host=env.get("POSTGRES_HOST") or None,
        port=int(env["POSTGRES_PORT"]) if env.get("POSTGRES_PORT") else None,
        database=env.get("POSTGRES_DB") or None,
    ).render_as_string(hide_password=False)


def check_services(env: Mapping[str, str]) -> list[str]:
    """What is missing for the scaled deployment, as sentences (empty when PostgreSQL and Redis answer)."""
    problems: list[str] = []
    problems += _check_postgres(env)
    problems += _check_redis(env)
    database_url = env.get("HANDOFF_DATABASE_URL") or ""
    if not database_url.startswith("postgresql"):
        problems.append(
            "HANDOFF_DATABASE_URL must be a PostgreSQL URL for several Rasa processes (they share the handoff "
            f"records and the outbox); it is {database_url.split(':', 1)[0] or 'empty'}."
        )
    return problems


def _check_postgres(env: Mapping[str, str]) -> list[str]:
    import psycopg2

    where = f"{env.get('POSTGRES_HOST')}:{env.get('POSTGRES_PORT')}"
    database, user = env.get("POSTGRES_DB"), env.get("POSTGRES_USER")
    try:
        connection = psycopg2.connect(
            host=env.get("POSTGRES_HOST"),
            port=env.get("POSTGRES_PORT"),
            dbname=database,
            user=user,
            password=env.get("POSTGRES_PASSWORD") or None,
            connect_timeout=5,
        )
    except psycopg2.OperationalError as exc:
        reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()).rstrip(".") or type(exc).__name__
        reason += "" if reason.endswith("?") else "."
        if "does not exist" in reason and "database" in reason:
            return [
                f"PostgreSQL at {where} has no database {database!r}: create it once with "
                f"`createdb -h {env.get('POSTGRES_HOST')} -p {env.get('POSTGRES_PORT')} -U {user} {database}`."
            ]
        return [
            f"PostgreSQL is not reachable at {where} (database {database!r}, user {user!r}): {reason} "
            "The Rasa replicas keep their conversations there: start PostgreSQL, or set POSTGRES_HOST, "
            "POSTGRES_PORT, POSTGRES_DB, POSTGRES_USER and POSTGRES_PASSWORD."
        ]
    connection.close()
    return []


def _check_redis(env: Mapping[str, str]) -> list[str]:
    import redis

    problems = []
    targets = {
        "conversation locks (REDIS_HOST, REDIS_PORT, REDIS_DB, REDIS_PASSWORD)": redis.Redis(
            host=env.get("REDIS_HOST") or "127.0.0.1",
            port=int(env.get("REDIS_PORT") or 6379),
            db=int(env.get("REDIS_DB") or 0),
            password=env.get("REDIS_PASSWORD") or None,
            socket_connect_timeout=5,
            socket_timeout=5,
        ),
        "socket.io (SOCKETIO_REDIS_URL)": redis.Redis.from_url(
            env.get("SOCKETIO_REDIS_URL") or "redis://127.0.0.1:6379/0", socket_connect_timeout=5, socket_timeout=5
        ),
    }
    for what, client in targets.items():
        kwargs = client.connection_pool.connection_kwargs
        where = f"{kwargs.get('host')}:{kwargs.get('port')}"
        try:
            client.ping()
        except redis.RedisError as exc:
            reason = str(exc).rstrip(".") or type(exc).__name__
            problems.append(f"Redis is not reachable at {where} for the {what}: {reason}. Start Redis or set those variables.")
        finally:
            client.close()
    return problems


# -- the processes --------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    command: tuple[str, ...]
    health_url: str | None
    expect: str | None = None
    popen: subprocess.Popen | None = None
    threads: list[threading.Thread] = field(default_factory=list)


class Deployment:
    """The action server, helpdesk, web chat, the Rasa replicas and haproxy, started and stopped together.

    Args:
        topology: where everything listens.
        environ: the environment of every process (see :func:`scaled_environment`).
        workdir: where haproxy.cfg and one log per process (``<name>.log``) go.
        model: the trained model every replica serves.
        with_helpdesk, with_webchat: start the embedded helpdesk / the web chat too.
        echo: also print every process's log lines, prefixed with its name.
    """

    def __init__(
        self,
        topology: Topology,
        environ: Mapping[str, str],
        workdir: Path,
        model: Path = PROJECT_ROOT / "models" / "handoff.tar.gz",
        with_helpdesk: bool = True,
        with_webchat: bool = True,
        echo: bool = False,
        python: Path | None = None,
    ) -> None:
        self.topology = topology
        self.env = dict(environ)
        self.workdir = Path(workdir)
        self.model = model
        self.echo = echo
        self.bin = Path(python or sys.executable).parent
        self.url = f"http://{_client_host(topology.host)}:{topology.rasa_port}"
        self.actions_url = f"http://{_client_host(topology.actions_host)}:{topology.actions_port}"
        self.haproxy_config = self.workdir / "haproxy.cfg"
        self.processes: dict[str, Process] = {}
        self._echo_lock = threading.Lock()
        self._define(with_helpdesk, with_webchat)

    def _define(self, with_helpdesk: bool, with_webchat: bool) -> None:
        python, rasa = str(self.bin / "python"), str(self.bin / "rasa")
        for server in self.topology.action_servers:
            self._add(
                server.name,
                (python, "-m", "handoff.server.action_server", "--port", str(server.port)),
                f"http://127.0.0.1:{server.port}/health",
            )
        if with_helpdesk:
            self._add("helpdesk", (python, "-m", "helpdesk"), f"http://127.0.0.1:{self.env.get('HELPDESK_PORT', '5080')}/health")
        if with_webchat:
            self._add("webchat", (python, "-m", "webchat"), f"http://127.0.0.1:{self.env.get('WEBCHAT_PORT', '5090')}/health")
        token = self.env.get("RASA_AUTH_TOKEN") or self.env.get("RASA_TOKEN") or ""
        from handoff.exposure import cors_origins

        for replica in self.topology.replicas:
            self._add(
                replica.name,
                (
                    rasa, "run", "--enable-api", *(("--auth-token", token) if token else ()),
                    "--cors", *cors_origins(self.env), "--interface", "127.0.0.1", "--port", str(replica.port),
                    "--model", str(self.model),
                    "--credentials", str(PROJECT_ROOT / "credentials.scaled.yml"),
                    "--endpoints", str(PROJECT_ROOT / "endpoints.scaled.yml"),
                ),  # fmt: skip
                f"http://127.0.0.1:{replica.port}/",
                expect=RASA_HELLO,
            )
        self._add("haproxy", (haproxy_binary(), "-db", "-f", str(self.haproxy_config)), None)

    def _add(self, name: str, command: tuple[str, ...], health_url: str | None, expect: str | None = None) -> None:
        self.processes[name] = Process(name, command, health_url, expect)

    # -- start and stop -----------------------------------------------------------------------------

    def start(self, timeout: float = 300) -> Deployment:
        """Start everything; return once every process and both balancer frontends answer."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.haproxy_config.write_text(render_haproxy(self.topology))
        check_haproxy_config(self.haproxy_config)
        started = time.monotonic()
        try:
            for name in self.processes:
                if name != "haproxy":
                    self._spawn(name)
            self._wait([n for n in self.processes if n != "haproxy"], started + timeout)
            self._spawn("haproxy")
            self._wait_balanced(started + timeout)
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.monotonic() - started
        return self

    def _spawn(self, name: str, append: bool = False) -> None:
        process = self.processes[name]
        log = open(self.workdir / f"{name}.log", "ab" if append else "wb")  # noqa: SIM115 - closed by the reader thread
        process.popen = subprocess.Popen(
            process.command,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        reader = threading.Thread(target=self._copy, args=(name, process.popen.stdout, log), daemon=True)
        reader.start()
        process.threads = [reader]

    def _copy(self, name: str, stream: IO[bytes], log: IO[bytes]) -> None:
        with log:
            for line in iter(stream.readline, b""):
                log.write(line)
                log.flush()
                if self.echo:
                    with self._echo_lock:
                        sys.stdout.write(f"[{name:<9}] {line.decode(errors='replace')}")
                        sys.stdout.flush()

    def healthy(self, name: str) -> bool:
        import requests

        process = self.processes[name]
        if process.health_url is None:
            return process.popen is not None and process.popen.poll() is None
        try:
            answer = requests.get(process.health_url, timeout=2)
        except requests.RequestException:
            return False
        return answer.status_code == 200 and (process.expect is None or process.expect in answer.text)

    def _wait(self, names: list[str], deadline: float) -> None:
        pending = list(names)
        while pending:
            for name in list(pending):
                popen = self.processes[name].popen
                if popen is not None and popen.poll() is not None:
                    raise DeploymentError(f"{name} exited with status {popen.returncode}:\n{self.log(name)}")
                if self.healthy(name):
                    pending.remove(name)
            if pending and time.monotonic() > deadline:
                raise DeploymentError(f"not ready in time: {', '.join(pending)}\n{self.log(pending[0])}")
            if pending:
                time.sleep(0.5)

    def _wait_balanced(self, deadline: float) -> None:
        """Until haproxy answers on both frontends with every server up."""
        import requests

        checks = {f"{self.url}/": RASA_HELLO, f"{self.actions_url}/health": None}
        while checks:
            popen = self.processes["haproxy"].popen
            if popen is not None and popen.poll() is not None:
                raise DeploymentError(f"haproxy exited with status {popen.returncode}:\n{self.log('haproxy')}")
            for url, expect in list(checks.items()):
                try:
                    answer = requests.get(url, timeout=2)
                    if answer.status_code == 200 and (expect is None or expect in answer.text):
                        del checks[url]
                except requests.RequestException:
                    pass
            if checks and time.monotonic() > deadline:
                raise DeploymentError(f"haproxy does not answer on {', '.join(checks)}\n{self.log('haproxy')}")
            if checks:
                time.sleep(0.3)
        # haproxy starts with every server up and marks a server down after two failed checks;
        # give the first checks a moment so that nothing is sent to a replica still loading.
        time.sleep(1.0)

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after 20 s)."""
        running = [p for p in self.processes.values() if p.popen is not None and p.popen.poll() is None]
        for process in running:
            _signal_group(process.popen, signal.SIGTERM)
        for process in running:
            try:
                process.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _signal_group(process.popen, signal.SIGKILL)
                process.popen.wait(timeout=10)
        for process in self.processes.values():
            for thread in process.threads:
                thread.join(timeout=5)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int | None:
        """Send ``sig`` (default SIGKILL: no shutdown code runs) to process ``name``; return its exit status."""
        popen = self.processes[name].popen
        assert popen is not None
        _signal_group(popen, sig)
        return popen.wait(timeout=30)

    def restart(self, name: str, timeout: float = 300) -> float:
        """Start process ``name`` again (after :meth:`kill`); return the seconds until it is healthy."""
        started = time.monotonic()
        self._spawn(name, append=True)
        self._wait([name], started + timeout)
        return time.monotonic() - started

    def log(self, name: str, tail: int = 6000) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def exited(self) -> list[str]:
        return [n for n, p in self.processes.items() if p.popen is not None and p.popen.poll() is not None]


def _signal_group(popen: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(popen.pid, sig)
    except ProcessLookupError:
        pass


# -- make run-scaled ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make run-scaled", description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=int(os.environ.get("REPLICAS") or 2), help="Rasa processes (default 2)")
    parser.add_argument(
        "--base-port",
        type=int,
        default=int(os.environ.get("SCALED_BASE_PORT") or DEFAULT_BASE_PORT),
        help=f"the action server's port; the replicas on the next ones (default {DEFAULT_BASE_PORT})",
    )
    parser.add_argument("--model", default=os.environ.get("RASA_MODEL") or "models/handoff.tar.gz")
    parser.add_argument("--workdir", default=str(PROJECT_ROOT / "var" / "scaled"), help="haproxy.cfg and the logs")
    parser.add_argument(
        "--write-deploy-configs",
        action="store_true",
        help="render deploy/haproxy.cfg.j2 for deploy/compose.yaml and deploy/kubernetes/, and exit",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.write_deploy_configs:
        for path in write_deploy_configs():
            print(f"wrote {path.relative_to(PROJECT_ROOT)}")
        return 0
    from handoff.exposure import ExposureError, check_bind
    from handoff.settings import SettingsError

    environ = os.environ
    try:
        host = (environ.get("RASA_HOST") or "").strip() or "127.0.0.1"
        check_bind("RASA_HOST", host, environ)
        topology = Topology.on_ports(
            args.replicas,
            args.base_port,
            host=host,
            rasa_port=int(environ.get("RASA_PORT") or 5005),
            actions_port=int(environ.get("ACTIONS_PORT") or 5055),
            lock_lifetime=int(environ.get("TICKET_LOCK_LIFETIME") or DEFAULT_LOCK_LIFETIME),
        )
        env = scaled_environment(environ, topology)
        model = Path(args.model)
        if not model.is_absolute():
            model = PROJECT_ROOT / model
        if not model.exists():
            raise DeploymentError(f"no trained model at {model}: run `make train` first")
        problems = check_services(env)
        if problems:
            raise DeploymentError("\n".join(["cannot start the scaled deployment:", *(f"  - {p}" for p in problems)]))
        deployment = Deployment(
            topology,
            env,
            Path(args.workdir),
            model=model,
            with_helpdesk=not environ.get("HELPDESK_WEBHOOK_URL"),
            echo=True,
        )
    except (DeploymentError, SettingsError, ExposureError, ValueError) as exc:
        print(f"run-scaled: {exc}", file=sys.stderr)
        return 2

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    try:
        deployment.start()
    except DeploymentError as exc:
        print(f"run-scaled: {exc}", file=sys.stderr)
        return 1
    replicas = ", ".join(f"{r.name} :{r.port}" for r in topology.replicas)
    print(
        f"==> ready in {deployment.ready_seconds:.0f} s\n"
        f"    Balancer (haproxy) {deployment.url}   -> {len(topology.replicas)} Rasa replicas ({replicas})\n"
        f"    Action server      {deployment.actions_url} (haproxy) -> :{topology.action_servers[0].port}\n"
        f"    Conversations      PostgreSQL {env['POSTGRES_HOST']}:{env['POSTGRES_PORT']}/{env['POSTGRES_DB']}; "
        f"locks and socket.io in Redis {env['REDIS_HOST']}:{env['REDIS_PORT']}\n"
        f"    Logs and haproxy.cfg in {deployment.workdir}. Ctrl-C stops everything.",
        flush=True,
    )
    replicas_left = {r.name for r in topology.replicas}
    while not stopping.wait(1.0):
        gone = set(deployment.exited())
        for name in sorted(gone & replicas_left):
            # haproxy takes it out of the rotation; the other replicas carry on.
            print(f"==> {name} exited; haproxy sends its traffic to the other replicas", file=sys.stderr, flush=True)
            replicas_left.discard(name)
        others = gone - {r.name for r in topology.replicas}
        if others or not replicas_left:
            print(f"==> {', '.join(sorted(others)) or 'every replica'} exited; stopping", file=sys.stderr)
            break
    print("==> stopping", flush=True)
    deployment.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
