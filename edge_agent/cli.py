"""`varde edge ...`: the gateway's commands. Heavy imports happen inside the commands, not at import time."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="The home gateway agent.")


def setup_logging(level: str = "INFO") -> None:
    """The edge's one logging setup: `event key=value ...` lines; journald adds the timestamp under systemd."""
    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s %(message)s", force=True)


@app.command("run")
def run(
    config: Path = typer.Option(..., "--config", "-c", help="The gateway's TOML configuration file."),
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR."),
) -> None:
    """Run the agent until SIGTERM: read devices, keep every reading in the outbox, publish to the broker."""
    import asyncio

    from edge_agent.agent import Agent
    from edge_agent.config import ConfigError, load_config

    setup_logging(log_level)
    try:
        settings = load_config(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    code = asyncio.run(Agent(settings).run())
    raise typer.Exit(code)


@app.command("check-config")
def check_config(config: Path = typer.Option(..., "--config", "-c")) -> None:
    """Validate a configuration file and print a one-line summary."""
    from edge_agent.config import ConfigError, load_config

    try:
        settings = load_config(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{config}: ok — gateway {settings.gateway_id}, broker {settings.broker.host}:{settings.broker.port}, "
        f"{len(settings.devices)} device(s)"
    )
