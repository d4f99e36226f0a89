"""The example Grafana dashboard uses only metrics the services register: names are read from the services' real
registry (every metrics module imported), not from a list kept in the test."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import Metric

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "varde.json"
METRICS_MODULES = (
    "ingest_service.metrics",
    "rules_engine.metrics",
    "clinician_api.metrics",
    "clinician_api.journal.metrics",
)
_OURS = re.compile(r"\b((?:varde|process)_[a-z0-9_]+)\b")
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}


def _queries(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, child in node.items():
            if key in ("expr", "query", "definition") and isinstance(child, str):
                yield child
            else:
                yield from _queries(child)
    elif isinstance(node, list):
        for child in node:
            yield from _queries(child)


def dashboard_metric_names(path: Path = DASHBOARD) -> set[str]:
    """The Varde and process metric names the dashboard's queries use (Prometheus's own `up` is not ours)."""
    return {name for query in _queries(json.loads(path.read_text())) for name in _OURS.findall(query)}


def exposed_names(families: Iterable[Metric]) -> set[str]:
    """Every series name a set of metric families exposes, including a labelled metric with no series yet."""
    names: set[str] = set()
    for family in families:
        names.add(family.name)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def registered_names() -> set[str]:
    for module in METRICS_MODULES:
        importlib.import_module(module)
    from store.observability import REGISTRY

    return exposed_names(REGISTRY.collect())


def test_every_metric_in_the_dashboard_is_registered_by_a_service() -> None:
    used = dashboard_metric_names()
    assert len(used) >= 20, used
    missing = used - registered_names()
    assert not missing, f"the dashboard uses metrics no service registers: {sorted(missing)}"


def test_the_dashboard_is_importable_grafana_json() -> None:
    doc = json.loads(DASHBOARD.read_text())
    assert doc["uid"] and doc["title"] and doc["schemaVersion"] >= 36
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        if panel["type"] != "row":
            assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}"
