"""The `varde` console script. Each sub-command imports what it needs only when it runs,
so a gateway with only `varde[edge]` installed never imports the cloud packages."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Varde: digital home monitoring.")


def main() -> None:
    app()
