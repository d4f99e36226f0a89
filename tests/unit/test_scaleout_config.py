"""The HAProxy configuration rendered for API replicas on one machine is one HAProxy accepts, with every replica."""

from __future__ import annotations

import subprocess
from pathlib import Path

from varde.scaleout import REPLICA_HEADER, find_haproxy, render_haproxy_config


def test_rendered_config_passes_haproxy_check_and_lists_every_replica(tmp_path: Path) -> None:
    text = render_haproxy_config(18080, [18081, 18082, 18083], 18099, tmp_path / "haproxy.sock")
    config = tmp_path / "haproxy.cfg"
    config.write_text(text)
    check = subprocess.run([str(find_haproxy()), "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    servers = [line.split()[1:3] for line in text.splitlines() if line.strip().startswith("server ")]
    assert servers == [["api1", "127.0.0.1:18081"], ["api2", "127.0.0.1:18082"], ["api3", "127.0.0.1:18083"]]
    assert "option httpchk GET /healthz" in text and f"set-header {REPLICA_HEADER} %[srv_name]" in text
    assert "bind 127.0.0.1:18080" in text and "bind 127.0.0.1:18099" in text
