"""The deployment files (deploy/) against their published schemas, offline.

deploy/compose.yaml against the compose-spec JSON Schema vendored in deploy/schemas/, the
manifests of deploy/kubernetes/ with kubernetes-validate (schemas shipped inside the package), and
the haproxy configurations rendered from deploy/haproxy.cfg.j2. Each check is also shown a broken
file, so it can fail.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from handoff.settings import PROJECT_ROOT
from handoff.tools import scaled

DEPLOY = PROJECT_ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
COMPOSE_SCHEMA = DEPLOY / "schemas" / "compose-spec.json"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
#: The Kubernetes version the manifests are checked for (kubernetes-validate 1.28.3 knows up to 1.28).
KUBERNETES_VERSION = "1.28.0"


# -- Docker Compose -------------------------------------------------------------------------------


def compose_errors(document: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(COMPOSE_SCHEMA.read_text()))
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)]


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_matches_the_compose_spec():
    assert compose_errors(load_compose()) == []


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["services"]["rasa"].update(healthcheck={"test": ["CMD", "true"], "interval": 5}),  # not a duration
        lambda d: d["services"]["haproxy"].update(ports="127.0.0.1:5005:5005"),  # a list is required
        lambda d: d["services"]["redis"].update(restart_policy="always"),  # no such key
    ],
    ids=["interval-not-a-duration", "ports-not-a-list", "unknown-key"],
)
def test_a_broken_compose_file_is_rejected(breakage):
    broken = copy.deepcopy(load_compose())
    breakage(broken)
    assert compose_errors(broken)


def test_compose_publishes_on_loopback_only_and_commits_no_secret():
    document = load_compose()
    for name, service in document["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    text = COMPOSE.read_text()
    for variable in ("HELPDESK_SECRET", "ACTIONS_TOKEN", "RASA_AUTH_TOKEN", "POSTGRES_PASSWORD", "HELPDESK_AGENTS"):
        assert f"${{{variable}:?" in text, f"{variable} must come from the environment"


def test_the_vendored_compose_schema_says_where_it_comes_from():
    readme = (DEPLOY / "schemas" / "README.md").read_text()
    assert "compose-spec/compose-spec" in readme and "compose-spec.json" in readme


# -- Kubernetes -----------------------------------------------------------------------------------


def manifest_documents() -> list[tuple[str, dict]]:
    return [(path.name, doc) for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def kubernetes_error(document: dict) -> str | None:
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("name,document", manifest_documents(), ids=lambda v: v if isinstance(v, str) else "")
def test_kubernetes_manifest_is_valid(name, document):
    assert kubernetes_error(document) is None


def _deployment(name: str) -> dict:
    return next(doc for _, doc in manifest_documents() if doc["kind"] == "Deployment" and doc["metadata"]["name"] == name)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["spec"].update(replicas="two"),
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(readinessProbe={"httpGet": {"path": "/"}}),  # no port
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(imagePulPolicy="Always")  # misspelt,
    ],
    ids=["replicas-not-a-number", "probe-without-port", "unknown-field"],
)
def test_a_broken_kubernetes_manifest_is_rejected(breakage):
    broken = copy.deepcopy(_deployment("rasa"))
    breakage(broken)
    assert kubernetes_error(broken)


def test_kubernetes_probes_and_secrets():
    for name, path in (("rasa", "/"), ("actions", "/health"), ("helpdesk", "/health"), ("webchat", "/health")):
        container = _deployment(name)["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == path
        assert container["livenessProbe"]["httpGet"]["path"] == path
        for variable in container.get("env", []):
            if any(word in variable["name"] for word in ("SECRET", "TOKEN", "PASSWORD", "AGENTS", "DATABASE_URL")):
                assert "secretKeyRef" in variable.get("valueFrom", {}), variable["name"]
    assert not [doc for _, doc in manifest_documents() if doc["kind"] == "Secret"], "no Secret is committed"


# -- haproxy --------------------------------------------------------------------------------------


def test_rendered_haproxy_configs_are_current():
    """deploy/haproxy.compose.cfg and the ConfigMap in deploy/kubernetes/haproxy.yaml are the template's
    rendering (`python -m handoff.tools.scaled --write-deploy-configs` writes them)."""
    assert scaled.COMPOSE_HAPROXY.read_text() == scaled.render_haproxy(scaled.COMPOSE_TOPOLOGY)
    configmap = next(doc for _, doc in manifest_documents() if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "haproxy")
    assert configmap["data"]["haproxy.cfg"] == scaled.render_haproxy(scaled.KUBERNETES_TOPOLOGY)


def test_run_scaled_config_lists_every_replica_on_loopback():
    topology = scaled.Topology.on_ports(3, base_port=6100)
    config = scaled.render_haproxy(topology)
    assert "bind 127.0.0.1:5005" in config and "bind 127.0.0.1:5055" in config
    for port in (6101, 6102, 6103):
        assert config.count(f"127.0.0.1:{port} check") == 2  # the REST and the socket.io backend
    assert "server actions1 127.0.0.1:6100 check" in config
    assert "retry-on conn-failure empty-response" in config and "option redispatch" in config


def _haproxy_check(text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    return subprocess.run([shutil.which("haproxy") or "/usr/sbin/haproxy", "-c", "-f", str(path)], capture_output=True, text=True)


@pytest.mark.skipif(not (shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists()), reason="haproxy is not installed (make haproxy)")
def test_haproxy_accepts_every_rendering_and_refuses_a_broken_one(tmp_path):
    for topology in (scaled.Topology.on_ports(2), scaled.COMPOSE_TOPOLOGY, scaled.KUBERNETES_TOPOLOGY):
        checked = _haproxy_check(scaled.render_haproxy(topology), tmp_path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = scaled.render_haproxy(scaled.Topology.on_ports(2)).replace("retry-on conn-failure empty-response", "retry-on whenever")
    assert _haproxy_check(broken, tmp_path).returncode != 0
