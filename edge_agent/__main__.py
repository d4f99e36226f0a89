"""`python -m edge_agent run --config FILE`: the same commands as `varde edge`."""

from edge_agent.cli import app

app()
