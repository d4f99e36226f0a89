"""The home gateway's runtime: BLE links, device handlers, GATT decoders, durable outbox and MQTT publisher.

Kept light on purpose: importing `edge_agent` (or `edge_agent.gatt`) pulls in nothing heavier than the stdlib.
Import the parts you need from their modules: `edge_agent.outbox.Outbox`, `edge_agent.publisher.Publisher`,
`edge_agent.agent.Agent`, `edge_agent.config.load_config`, `edge_agent.link.Link`.
"""

from __future__ import annotations

from importlib import metadata


def _version() -> str:
    try:
        return metadata.version("varde")
    except metadata.PackageNotFoundError:
        return "0.0.0+source"


AGENT_VERSION = _version()

__all__ = ["AGENT_VERSION"]
