"""Fixtures for the record integration: a FHIR record system on loopback, and a care team whose organisation
journals to it (endpoint with OAuth2 client credentials read from a secrets file, fast back-off for the tests)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from store.settings import varde_home
from tests.integration.journal.receiver import RecordSystem
from tests.stack_plugin import Tenant

pytestmark = pytest.mark.integration


@pytest.fixture
def record_system() -> Iterator[RecordSystem]:
    system = RecordSystem()
    system.start()
    yield system
    system.stop()


@dataclass
class Journaled:
    tenant: Tenant
    organisation_id: UUID
    org_number: str
    endpoint_id: UUID
    national_ids: list[str]
    secret_ref: str


@pytest.fixture
def journaled_tenant(
    make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], record_system: RecordSystem, tmp_path: Path
) -> Callable[..., Journaled]:
    from clinician_api.journal.admin import add_endpoint, add_organisation, link_team

    def make(patients: int = 1, protocol: str = "copd", **endpoint: Any) -> Journaled:
        tenant = make_tenant(patients=patients, protocol=protocol)
        org_number = f"9{secrets.randbelow(10**8):08d}"
        secret_file = tmp_path / f"secret-{org_number}"
        secret_file.write_text(record_system.state.client_secret + "\n")
        secret_file.chmod(0o600)
        national_ids = []
        for patient_id in tenant.patients:
            national_id = f"{secrets.randbelow(28) + 1:02d}0170{secrets.randbelow(10**5):05d}"
            db.execute("UPDATE patients SET national_id = %s WHERE id = %s", (national_id, patient_id))
            national_ids.append(national_id)
        organisation_id = add_organisation(db, f"Kommune {org_number}", org_number)
        link_team(db, tenant.team, str(organisation_id))
        options: dict[str, Any] = {"max_attempts": 1000, "backoff_base_seconds": 0.5, "backoff_max_seconds": 3.0}
        options.update(endpoint)
        endpoint_id = add_endpoint(
            db,
            org_number,
            "ehr",
            record_system.base_url,
            token_url=record_system.token_url,
            client_id=record_system.state.client_id,
            client_secret_ref=f"file:{secret_file}",
            timeout_seconds=5.0,
            **options,
        )
        return Journaled(tenant, organisation_id, org_number, endpoint_id, national_ids, f"file:{secret_file}")

    return make


@pytest.fixture
def extra_workers(stack: dict[str, Any]) -> Iterator[Callable[[int], list[subprocess.Popen[bytes]]]]:
    """More `varde journal run` processes beside the stack's own, all draining the same outbox."""
    started: list[subprocess.Popen[bytes]] = []

    def start(count: int) -> list[subprocess.Popen[bytes]]:
        env = {**os.environ, "VARDE_HOME": str(varde_home()), "PYTHONUNBUFFERED": "1"}
        root = Path(__file__).resolve().parents[3]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        for i in range(count):
            log = open(varde_home() / "logs" / f"journal-test-{i}.log", "ab")  # noqa: SIM115 - the child's log
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "varde", "journal", "run", "--poll-seconds", "1"],
                    stdout=log,
                    stderr=log,
                    env=env,
                    cwd=root,
                )
            )
            log.close()
        return started[-count:]

    yield start
    for proc in started:
        proc.terminate()
    for proc in started:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def outbox_rows(db: psycopg.Connection[Any], endpoint_id: UUID) -> list[dict[str, Any]]:
    cur = db.execute(
        "SELECT id, kind, state, attempts, last_status, last_error, alarm_id, bundle_identifier, resource_count, "
        "bundle FROM journal_outbox WHERE endpoint_id = %s ORDER BY created_at, id",
        (endpoint_id,),
    )
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
