"""Static checks of the EMQX-cluster variant: compose.yaml merged with compose.emqx.yaml the way Docker Compose merges
them, and deploy/emqx/emqx.hocon. No container engine (nor EMQX) runs here, so this stops at the files; the SQL in the
hocon file is run against PostgreSQL by tests/integration/test_emqx_logins.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
HOCON = "\n".join(
    line for line in (DEPLOY / "emqx" / "emqx.hocon").read_text().splitlines() if not line.lstrip().startswith("#")
)
_SUBSTITUTION = re.compile(r"\$\{([A-Z0-9_]+)(?:[:?\-][^}]*)?\}")
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|COOKIE")
_REPLACED_ON_MERGE = {"command", "entrypoint"}


class _Override:
    def __init__(self, value: Any) -> None:
        self.value = value


class _Reset:
    pass


class _ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's merge tags: `!override` replaces the earlier value, `!reset` removes it."""


def _construct_override(loader: yaml.SafeLoader, node: yaml.Node) -> _Override:
    if isinstance(node, yaml.MappingNode):
        return _Override(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return _Override(loader.construct_sequence(node, deep=True))
    return _Override(loader.construct_scalar(node))  # type: ignore[arg-type]


_ComposeLoader.add_constructor("!override", _construct_override)
_ComposeLoader.add_constructor("!reset", lambda loader, node: _Reset())


def _merge(base: Any, override: Any, key: str = "") -> Any:
    """Compose's merge rules: mappings merge key by key, sequences append, scalars (and command, entrypoint,
    healthcheck.test) are replaced."""
    if isinstance(override, _Override):
        return override.value
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            if isinstance(value, _Reset):
                merged.pop(name, None)
            elif name in merged:
                merged[name] = _merge(merged[name], value, name)
            else:
                merged[name] = _merge({}, value, name) if isinstance(value, dict) else value
        return merged
    if isinstance(base, list) and isinstance(override, list) and key not in _REPLACED_ON_MERGE and key != "test":
        return base + [v for v in override if v not in base]
    return override


def _load(name: str) -> dict[str, Any]:
    doc = yaml.load((DEPLOY / name).read_text(), Loader=_ComposeLoader)  # noqa: S506 (SafeLoader subclass)
    assert isinstance(doc, dict)
    return doc


def _variant() -> dict[str, Any]:
    return dict(_merge(_load("compose.yaml"), _load("compose.emqx.yaml")))


def _active(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services `docker compose up` starts with no profile enabled."""
    return {name: s for name, s in doc["services"].items() if not s.get("profiles")}


def _nodes(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services.items() if str(s.get("image", "")).find("emqx/emqx:") >= 0 and "ports" in s}


def _volume(spec: str) -> tuple[str, str]:
    """(source, target) of a short-syntax volume, a `${NAME:?message}` in the source shortened to `$NAME`."""
    source, target = _SUBSTITUTION.sub(lambda m: "$" + m.group(1), spec).split(":")[:2]
    return source, target


def _hocon(key: str) -> str:
    match = re.search(rf"^\s*{re.escape(key)}\s*=\s*(.+?)\s*$", HOCON, re.MULTILINE)
    assert match is not None, key
    return match.group(1)


def test_variant_runs_the_same_services_with_three_emqx_nodes_instead_of_mosquitto() -> None:
    base = _active(_load("compose.yaml"))
    variant = _active(_variant())
    nodes = _nodes(variant)
    assert sorted(nodes) == ["emqx-1", "emqx-2", "emqx-3"]
    assert set(variant) == (set(base) - {"mosquitto", "mosquitto-init"}) | set(nodes) | {"emqx-init"}
    for name, service in variant.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in variant, f"{name} waits for {dependency}, which does not run in the variant"
    for image in {str(n["image"]) for n in nodes.values()}:
        assert re.fullmatch(r"\$\{VARDE_EMQX_IMAGE:-emqx/emqx:5\.\d+\.\d+\}", image), image


def test_nodes_form_one_cluster_from_static_seeds() -> None:
    nodes = _nodes(_active(_variant()))
    names = {str(n["environment"]["EMQX_NODE__NAME"]) for n in nodes.values()}
    assert len(names) == 3
    for node in nodes.values():
        node_name = str(node["environment"]["EMQX_NODE__NAME"])
        host = node_name.split("@", 1)[1]
        assert "." in host, "EMQX uses long node names: the host part must be a FQDN"
        assert node["hostname"] == host and host in node["networks"]["backend"]["aliases"]
        assert "emqx" in node["networks"]["backend"]["aliases"], "the services' broker address"
        assert _SUBSTITUTION.fullmatch(str(node["environment"]["EMQX_NODE__COOKIE"]))
    assert _hocon("discovery_strategy") == "static"
    assert set(re.findall(r'"([^"]+)"', _hocon("seeds"))) == names


def test_mqtt_is_served_only_over_tls_on_8883_with_the_mosquitto_certificates() -> None:
    variant = _active(_variant())
    mosquitto = _load("compose.yaml")["services"]["mosquitto"]["volumes"]
    mosquitto_tls = {_volume(v)[0] for v in mosquitto if "/tls/" in v}
    for name, service in variant.items():
        published = [str(p).split(":")[-1] for p in service.get("ports", [])]
        if name in _nodes(variant):
            assert published == ["8883"], name
            mounts = dict(_volume(str(v)) for v in service["volumes"])
            for option in ("cacertfile", "certfile", "keyfile"):
                path = _hocon(option).strip('"')
                assert path in mounts.values(), (name, option)
            assert {s for s in mounts if "VARDE_TLS_DIR" in s} == mosquitto_tls and len(mosquitto_tls) == 3
            assert "./emqx/emqx.hocon" in mounts and mounts["./emqx/emqx.hocon"] == "/opt/emqx/etc/emqx.conf"
        elif name != "proxy":
            assert published == [], f"{name} publishes {published}"
    for listener in ("tcp", "ws", "wss"):
        assert _hocon(f"listeners.{listener}.default.enable") == "false", listener
    assert _hocon("bind") == '"0.0.0.0:8883"'
    assert len(re.findall(r"^listeners\.", HOCON, re.MULTILINE)) == 4, "no listener besides the four above"


def test_hocon_denies_by_default_and_reads_logins_from_postgresql() -> None:
    assert _hocon("no_match") == "deny"
    assert _hocon("deny_action") == "disconnect"
    assert _hocon("backend") == "postgresql" and _hocon("type") == "postgresql"
    assert [u for u in re.findall(r"^\s*username = (\S+)$", HOCON, re.MULTILINE)] == ["varde_emqx", "varde_emqx"]
    assert "password =" not in HOCON.replace("default_password", ""), "the database password comes from the env"
    assert _hocon("shared_subscription") == "true"
    assert "${" not in HOCON.replace("${username}", "").replace("${clientid}", "")


def test_services_use_the_cluster_and_the_emqx_backend() -> None:
    variant = _active(_variant())
    varde = {n: s for n, s in variant.items() if s.get("image") == "${VARDE_IMAGE:-varde:latest}"}
    assert {"setup", "ingest-1", "api-1", "rules", "journal"} <= set(varde)
    for name, service in varde.items():
        environment = service["environment"]
        assert environment["VARDE_MQTT_HOST"] == "emqx", name
        assert environment["VARDE_MQTT_PORT"] == "8883", name
        assert environment["VARDE_BROKER_KIND"] == "emqx", name
    setup = varde["setup"]["environment"]
    assert setup["VARDE_EMQX_API_URL"] == f"http://emqx:{_hocon('listeners.http.bind')}"
    nodes = _nodes(variant)
    for node in nodes.values():
        assert _SUBSTITUTION.fullmatch(str(node["environment"]["EMQX_AUTHENTICATION__1__PASSWORD"]))
        assert node["environment"]["EMQX_AUTHENTICATION__1__PASSWORD"] == setup["VARDE_EMQX_DB_PASSWORD"]


def test_variant_takes_secrets_from_listed_variables_and_references_existing_files() -> None:
    text = (DEPLOY / "compose.emqx.yaml").read_text()
    listed = {
        line.split("=")[0]
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    used = set(_SUBSTITUTION.findall(text))
    assert used <= listed, sorted(used - listed)
    doc = _load("compose.emqx.yaml")
    for name, service in doc["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if _SECRET_NAME.search(key):
                assert _SUBSTITUTION.fullmatch(str(value)), f"{name}.{key} must come from the environment"
        for volume in service.get("volumes", []):
            source = _volume(str(volume))[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), source
            elif not source.startswith("$"):
                assert source in doc["volumes"], source
