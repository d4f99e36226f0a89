"""`varde edge ...`: the gateway's commands. Heavy imports happen inside the commands, not at import time."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="The home gateway agent.")


def setup_logging(level: str = "INFO") -> None:
    """The shared setup (`vitals.logs`; `VARDE_LOG_FORMAT=json` for JSON lines); journald adds the timestamp."""
    from vitals.logs import setup_logging as setup

    setup(level, timestamps=False)


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


@app.command("pair")
def pair(
    config: Path = typer.Option(..., "--config", "-c", help="The gateway's TOML configuration file to add to."),
    seconds: float = typer.Option(10.0, "--seconds", help="How long to listen for devices."),
    address: str | None = typer.Option(None, "--address", help="Add this device without asking (from the list)."),
    model: str | None = typer.Option(None, "--model", help="Model name to record (default: advertised name)."),
    passkey: str | None = typer.Option(None, "--passkey", help="Passkey printed on the device, if it needs one."),
    bond_now: bool = typer.Option(False, "--bond", help="Pair (bond) with the device once, now."),
) -> None:
    """Find health devices advertising nearby (take a measurement to wake them) and add one to the config."""
    import asyncio

    from edge_agent.agent import configured_radio
    from edge_agent.config import ConfigError, load_config
    from edge_agent.devices.pairing import add_device, bond, discover
    from edge_agent.link import LinkError

    setup_logging("WARNING")
    try:
        settings = load_config(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    radio = configured_radio(settings)
    try:
        candidates = asyncio.run(discover(radio, duration_s=seconds))
    except LinkError as exc:
        typer.echo(f"scan failed: {exc}", err=True)
        raise typer.Exit(1) from None
    if not candidates:
        typer.echo("no health device heard; take a measurement so the device advertises, then try again", err=True)
        raise typer.Exit(1)
    for i, c in enumerate(candidates, 1):
        typer.echo(f"{i}. {c.address}  {c.type:<22} {c.name or '':<20} RSSI {c.rssi}")
    chosen = next((c for c in candidates if address and c.address == address.upper()), None)
    if chosen is None:
        index = typer.prompt("Add which device (number)", type=int)
        if not 1 <= index <= len(candidates):
            typer.echo("no such device in the list", err=True)
            raise typer.Exit(2)
        chosen = candidates[index - 1]
    try:
        if bond_now:
            # A fresh radio: each asyncio.run is its own loop, and a Bumble host lives on the loop that opened it.
            asyncio.run(bond(configured_radio(settings).link(chosen.address), passkey=passkey))
        add_device(config, chosen, model=model, passkey=passkey)
    except (ConfigError, LinkError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"added {chosen.type} {chosen.address} to {config}")


@app.command("enrol")
def enrol_command(
    config: Path = typer.Option(..., "--config", "-c", help="Where to write the gateway's configuration."),
    payload: str | None = typer.Option(
        None,
        "--payload",
        help="The provisioning code (default: read one line from stdin, e.g. typed by a USB QR scanner).",
    ),
    ca_file: Path | None = typer.Option(
        None, "--ca-file", help="Where to put the broker's CA (default: ca.pem beside)."
    ),
    group: str | None = typer.Option(None, "--group", help="Make the configuration 0640 for this group (varde-edge)."),
) -> None:
    """Write this gateway's configuration from the installer's QR code (`varde gateway add --qr`)."""
    import sys

    from edge_agent.config import ConfigError
    from edge_agent.enrol import enrol
    from vitals.provisioning import ProvisioningError

    if payload is None:
        if sys.stdin.isatty():
            typer.echo("Scan the gateway's QR code now (or paste its VARDE1:… text and press Enter):", err=True)
        payload = sys.stdin.readline()
    try:
        done = enrol(payload, config, ca_path=ca_file, group=group)
    except (ProvisioningError, ConfigError, OSError, LookupError) as exc:
        typer.echo(f"enrolment failed: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{config}: gateway {done.config.gateway_id}, broker {done.config.broker.host}:{done.config.broker.port}"
        + (f", CA {done.ca_path}" if done.ca_path else "")
        + f", {len(done.config.devices)} device(s)"
        + (f" ({done.kept_devices} kept from the earlier file)" if done.kept_devices else "")
    )
