"""deploy/mosquitto/mosquitto.conf run by the real Mosquitto: paths moved under the stack's data directory and the
listener bound to loopback, everything else as production has it. It must start, serve TLS only, and admit the
dynamic-security admin created the way deploy/mosquitto/init-dynsec.sh creates it."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store.settings import varde_home
from varde.net import free_port, port_open

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def production_broker(stack: dict[str, Any]) -> Iterator[tuple[int, str, str]]:
    from varde import stack as stack_mod
    from varde.tls import ensure_local_pki

    binary, plugin = stack_mod.find_mosquitto()
    user = stack_mod._service_user()
    base = Path(stack["data_root"]) / f"deploy-broker-{secrets.token_hex(4)}"
    for sub in ("config", "tls", "dynsec", "data"):
        (base / sub).mkdir(parents=True)
    pki = ensure_local_pki(varde_home() / "tls")
    for name, source in (
        ("ca.crt", pki.ca_cert),
        ("broker.crt", pki.cert("broker")),
        ("broker.key", pki.key("broker")),
    ):
        shutil.copyfile(source, base / "tls" / name)
    admin_password = secrets.token_urlsafe(16)
    ctrl = shutil.which("mosquitto_ctrl") or "/usr/bin/mosquitto_ctrl"
    subprocess.run(
        [ctrl, "dynsec", "init", str(base / "dynsec" / "dynamic-security.json"), "admin", admin_password],
        check=True,
        capture_output=True,
    )
    port = free_port()
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    conf = conf.replace("listener 8883\n", f"listener {port} 127.0.0.1\n")
    conf = conf.replace("/usr/lib/mosquitto_dynamic_security.so", str(plugin)).replace("/mosquitto/", f"{base}/")
    (base / "config" / "mosquitto.conf").write_text(conf)
    stack_mod._chown_tree(base, user)
    kwargs: dict[str, Any] = {}
    if user is not None:
        kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
    log = open(base / "mosquitto.log", "wb")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(
        [str(binary), "-c", str(base / "config" / "mosquitto.conf")],
        stdout=log,
        stderr=log,
        start_new_session=True,
        **kwargs,
    )
    log.close()
    try:
        stack_mod._wait_until(
            lambda: port_open("127.0.0.1", port) or proc.poll() is not None, 15, "the production broker"
        )
        assert proc.poll() is None, (base / "mosquitto.log").read_text()
        yield port, str(pki.ca_cert), admin_password
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        proc.wait(15)
        shutil.rmtree(base, ignore_errors=True)


def test_production_broker_config_serves_varde_broker_init_only_over_tls(
    production_broker: tuple[int, str, str],
) -> None:
    from store.settings import Settings
    from varde.admin import init_broker
    from varde.broker import BrokerAdminError, DynSecAdmin

    port, ca_file, admin_password = production_broker
    settings = Settings(
        mqtt_host="127.0.0.1",
        mqtt_port=port,
        mqtt_tls_ca_file=Path(ca_file),
        mqtt_admin_username="admin",
        mqtt_admin_password=admin_password,
        mqtt_ingest_username="varde-ingest",
        mqtt_ingest_password=secrets.token_urlsafe(16),
        mqtt_api_username="varde-api",
        mqtt_api_password=secrets.token_urlsafe(16),
    )
    instances = {"ingest": ["ingest-1", "ingest-2"], "api": ["api-1"]}
    logins = ["varde-ingest-ingest-1", "varde-ingest-ingest-2", "varde-api-api-1"]
    assert init_broker(settings, instances) == logins
    assert init_broker(settings, instances) == logins  # idempotent: `setup` runs on every `up`
    with DynSecAdmin("127.0.0.1", port, "admin", admin_password, tls_ca_file=ca_file) as admin:
        roles = admin.run([{"command": "listRoles"}])[0]["data"]["roles"]
    assert {"service-ingest", "service-api"} <= set(roles)
    with pytest.raises(BrokerAdminError):
        DynSecAdmin("127.0.0.1", port, "admin", admin_password, timeout=3).close()  # plain MQTT: no listener for it
    with pytest.raises(BrokerAdminError):
        DynSecAdmin("127.0.0.1", port, "admin", "wrong-password", timeout=3, tls_ca_file=ca_file).close()
