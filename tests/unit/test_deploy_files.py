"""Static checks of deploy/: the compose file parses, every file it or the Dockerfile references exists, settings
come from the environment with every name listed in .env.example, and no secret value is committed.

No container engine runs here, so these checks stop at what can be read from the files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
_SUBSTITUTION = re.compile(r"\$\{([A-Z0-9_]+)(?:[:?\-][^}]*)?\}")
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$")


def _compose() -> dict[str, Any]:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _env_example_names() -> set[str]:
    names: set[str] = set()
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and value == "", f".env.example must list names only, got {line!r}"
            names.add(name.strip())
    return names


def _volume(spec: str) -> tuple[str, str]:
    """(source, target) of a short-syntax volume; a `${NAME:?message}` in the source is kept whole."""
    plain = _SUBSTITUTION.sub(lambda m: "$" + m.group(1), spec)
    source, target = plain.split(":")[:2]
    return source, target


def _bind_sources(service: dict[str, Any]) -> list[str]:
    sources = [_volume(v)[0] for v in service.get("volumes", [])]
    return [s for s in sources if s.startswith((".", "/", "$"))]


def test_compose_runs_every_part_of_the_platform() -> None:
    services = _services()
    commands = {name: service.get("command") or [] for name, service in services.items()}
    ingest_ids = [c[c.index("--worker-id") + 1] for c in commands.values() if c[:2] == ["ingest", "run"]]
    assert len(ingest_ids) >= 2 and len(set(ingest_ids)) == len(ingest_ids), ingest_ids
    assert sum(c[:2] == ["api", "run"] for c in commands.values()) == 2
    assert sum(c[:2] == ["rules", "run"] for c in commands.values()) == 1
    assert sum(c[:2] == ["journal", "run"] for c in commands.values()) == 1
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb:")
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:2")
    assert [p.split(":")[-1] for p in services["mosquitto"]["ports"]] == ["8883"]


def _broker_init_names(option: str) -> list[str]:
    script = " ".join(_services()["setup"]["entrypoint"])
    return re.findall(rf"{option} (\S+)", script.split("varde broker init", 1)[1])


def test_broker_init_makes_a_login_for_every_ingest_worker_and_api_replica_and_no_other() -> None:
    """Each instance's login is bound to `varde-<service>-<name>`: a worker or replica without one cannot connect,
    and a name two instances shared would have them take over each other's session."""
    services = _services()
    commands = {name: service.get("command") or [] for name, service in services.items()}
    workers = [c[c.index("--worker-id") + 1] for c in commands.values() if c[:2] == ["ingest", "run"]]
    replicas = [
        services[name]["environment"].get("VARDE_API_REPLICA")
        for name, c in commands.items()
        if c[:2] == ["api", "run"]
    ]
    assert None not in replicas and len(set(replicas)) == len(replicas), replicas
    assert sorted(_broker_init_names("--ingest-worker")) == sorted(workers)
    assert sorted(_broker_init_names("--api-replica")) == sorted(replicas)


def test_every_referenced_file_exists() -> None:
    services = _services()
    for name, service in services.items():
        build = service.get("build")
        if build:
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file(), name
        for source in _bind_sources(service):
            if source.startswith("$"):
                continue  # operator-provided (certificates); its variable is checked against .env.example
            assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
    volumes = set(_compose().get("volumes", {}))
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = _volume(volume)[0]
            if not source.startswith((".", "/", "$")):
                assert source in volumes, f"{name}: named volume {source} is not declared"


def test_dockerfile_copies_existing_paths_and_runs_varde_as_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    user = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert 'ENTRYPOINT ["varde"]' in text
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text()
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert f"!{source.removeprefix('./')}" in ignored or f"!{source}/" in ignored, source


def test_proxy_forwards_to_the_api_replicas() -> None:
    caddyfile = (DEPLOY / "caddy" / "Caddyfile").read_text()
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", caddyfile)
    assert upstreams is not None
    api_services = {n for n, s in _services().items() if (s.get("command") or [])[:2] == ["api", "run"]}
    assert {u.split(":")[0] for u in upstreams.group(1).split()} == api_services
    assert "health_uri /healthz" in caddyfile


def test_broker_listens_only_with_tls_and_dynamic_security() -> None:
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    directives = [line.split() for line in conf.splitlines() if line.strip() and not line.startswith("#")]
    assert [d for d in directives if d[0] == "listener"] == [["listener", "8883"]]
    keys = {d[0]: d[1:] for d in directives}
    assert keys["allow_anonymous"] == ["false"]
    assert int(keys["max_packet_size"][0]) <= 1024 * 1024, "the broker must refuse packets far past ingest's limit"
    for option in ("cafile", "certfile", "keyfile"):
        assert keys[option][0].startswith("/mosquitto/tls/")
    assert keys["plugin"][0].endswith("mosquitto_dynamic_security.so")
    mounts = {_volume(v)[1] for v in _services()["mosquitto"]["volumes"]}
    for option in ("cafile", "certfile", "keyfile"):
        assert keys[option][0] in mounts, option
    assert str(Path(keys["plugin_opt_config_file"][0]).parent) in mounts


def test_every_setting_comes_from_a_variable_listed_in_env_example() -> None:
    names = _env_example_names()
    used = set(_SUBSTITUTION.findall((DEPLOY / "compose.yaml").read_text()))
    assert used, "compose.yaml takes nothing from the environment"
    used |= set(_SUBSTITUTION.findall((DEPLOY / "compose.emqx.yaml").read_text()))  # the EMQX-cluster variant
    assert used <= names, f"not in .env.example: {sorted(used - names)}"
    assert names <= used, f"listed but unused: {sorted(names - used)}"


@pytest.mark.parametrize("service_name", sorted(_services()))
def test_no_secret_value_is_committed(service_name: str) -> None:
    environment = _services()[service_name].get("environment") or {}
    for name, value in environment.items():
        text = str(value)
        if _SECRET_NAME.search(name):
            assert _SUBSTITUTION.fullmatch(text), f"{service_name}.{name} must come from the environment"
        userinfo = re.match(r"\w+://[^:/@]+:([^@]+)@", text)
        if userinfo:
            assert _SUBSTITUTION.fullmatch(userinfo.group(1)), f"{service_name}.{name} embeds a password"


def test_no_private_key_or_env_file_is_in_deploy() -> None:
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            assert path.name != ".env", path
            assert "PRIVATE KEY-----" not in path.read_text(errors="replace"), path


def test_prometheus_scrapes_every_varde_service_on_its_ops_port() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        if job["job_name"].startswith("varde-")
        for static in job["static_configs"]
        for target in static["targets"]
    }
    port = _services()["api-1"]["environment"]["VARDE_METRICS_PORT"]
    varde_services = {n for n, s in _services().items() if (s.get("command") or [""])[0] in _SERVICE_COMMANDS}
    assert targets == {f"{name}:{port}" for name in varde_services}
    for name in varde_services:
        command = _services()[name]["command"]
        if "--metrics-port" in command:
            assert command[command.index("--metrics-port") + 1] == port, name


_SERVICE_COMMANDS = {"ingest", "rules", "api", "journal"}
