"""FHIR Bulk Data export jobs and their files (`fhir_exports`, `fhir_export_files`): whose data a job may hold, the
job from kick-off (queued) through running (with a heartbeat and progress) to completed, failed or cancelled, its
gzip NDJSON files, and the readings it streams through a server-side cursor. What goes into the files (the FHIR
resources, the pseudonymised variant) is `clinician_api.fhir_export`'s. Transactions are the caller's."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, sql
from psycopg.rows import class_row, scalar_row

from store.journal_documents import PatientCondition
from store.readings import StoredReading, reading_columns


def exportable_patients(
    conn: Connection[Any], user_id: UUID, team_id: UUID | None, may_export: PatientCondition
) -> list[UUID]:
    """The patients of the user's care teams (of the one team, if given) by team membership only, passing
    `may_export`, by id."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return cur.execute(
            sql.SQL(
                "SELECT p.id FROM patients p JOIN team_memberships m ON m.team_id = p.team_id AND "
                "m.user_id = %s WHERE (%s::uuid IS NULL OR p.team_id = %s) AND {} ORDER BY p.id"
            ).format(may_export("p.id")),
            (user_id, team_id, team_id),
        ).fetchall()


def is_member(conn: Connection[Any], user_id: UUID, team_id: UUID) -> bool:
    """Whether the user is a member of the care team."""
    return (
        conn.execute(
            "SELECT 1 FROM team_memberships WHERE user_id = %s AND team_id = %s", (user_id, team_id)
        ).fetchone()
        is not None
    )


def create(
    conn: Connection[Any],
    *,
    user_id: UUID,
    level: str,
    team_id: UUID | None,
    types: Sequence[str],
    since: datetime | None,
    pseudonymised: bool,
    pseudonym_key: bytes | None,
    request_url: str,
) -> UUID:
    """A queued job; expired jobs (anyone's) and their files are deleted on the way."""
    conn.execute("DELETE FROM fhir_exports WHERE expires_at < now()")
    with conn.cursor(row_factory=scalar_row) as cur:
        export_id: UUID | None = cur.execute(
            "INSERT INTO fhir_exports (user_id, level, team_id, types, since, pseudonymised, pseudonym_key, "
            "request_url) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (user_id, level, team_id, list(types), since, pseudonymised, pseudonym_key, request_url),
        ).fetchone()
    assert export_id is not None
    return export_id


@dataclass(frozen=True, slots=True)
class StartedJob:
    """A job taken from the queue by the process that runs it."""

    id: UUID
    user_id: UUID
    team_id: UUID | None
    types: list[str]
    since: datetime | None
    pseudonym_key: bytes | None


def start(conn: Connection[Any], export_id: UUID) -> StartedJob | None:
    """The queued job marked running; None when it is not queued (already taken, cancelled or gone)."""
    with conn.cursor(row_factory=class_row(StartedJob)) as cur:
        return cur.execute(
            "UPDATE fhir_exports SET state = 'running', heartbeat_at = now(), progress = 'started' "
            "WHERE id = %s AND state = 'queued' RETURNING id, user_id, team_id, types, since, pseudonym_key",
            (export_id,),
        ).fetchone()


def set_patient_count(conn: Connection[Any], export_id: UUID, count: int) -> None:
    conn.execute("UPDATE fhir_exports SET patient_count = %s WHERE id = %s", (count, export_id))


def heartbeat(conn: Connection[Any], export_id: UUID, progress: str) -> bool:
    """The running job's heartbeat and progress; False when it is no longer running (cancelled)."""
    row = conn.execute(
        "UPDATE fhir_exports SET heartbeat_at = now(), progress = %s WHERE id = %s AND state = 'running' RETURNING id",
        (progress, export_id),
    ).fetchone()
    return row is not None


def add_file(
    conn: Connection[Any], export_id: UUID, seq: int, resource_type: str, line_count: int, ndjson_gzip: bytes
) -> None:
    conn.execute(
        "INSERT INTO fhir_export_files (export_id, seq, resource_type, line_count, ndjson_gzip) "
        "VALUES (%s, %s, %s, %s, %s)",
        (export_id, seq, resource_type, line_count, ndjson_gzip),
    )


def complete(conn: Connection[Any], export_id: UUID) -> None:
    """The running job is done (a cancelled one stays cancelled)."""
    conn.execute(
        "UPDATE fhir_exports SET state = 'completed', progress = 'completed', finished_at = now() "
        "WHERE id = %s AND state = 'running'",
        (export_id,),
    )


def fail(conn: Connection[Any], export_id: UUID, error: str) -> None:
    conn.execute(
        "UPDATE fhir_exports SET state = 'failed', error = %s, finished_at = now() WHERE id = %s", (error, export_id)
    )


def readings(
    conn: Connection[Any], cursor_name: str, patient_ids: Sequence[UUID], since: datetime | None, batch: int
) -> Iterator[StoredReading]:
    """Every reading of the patients (received since `since`, if given) in order of patient, measured time and id,
    through a server-side cursor fetching `batch` rows at a time; the caller's transaction stays open while this
    is iterated."""
    with conn.cursor(cursor_name, row_factory=class_row(StoredReading)) as cur:
        cur.itersize = batch
        cur.execute(
            sql.SQL(
                "SELECT {} FROM readings WHERE patient_id = ANY(%s) AND (%s::timestamptz IS NULL OR "
                "received_at >= %s) ORDER BY patient_id, measured_at, id"
            ).format(reading_columns("readings")),
            (list(patient_ids), since, since),
        )
        yield from cur


# --- the requester's view --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobStatus:
    state: str
    progress: str
    error: str | None
    created_at: datetime
    request_url: str
    heartbeat_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ExportFile:
    seq: int
    resource_type: str
    line_count: int


def job_of(conn: Connection[Any], export_id: UUID, user_id: UUID) -> JobStatus | None:
    """The user's own job, unless cancelled or expired."""
    with conn.cursor(row_factory=class_row(JobStatus)) as cur:
        return cur.execute(
            "SELECT state, progress, error, created_at, request_url, heartbeat_at, expires_at FROM fhir_exports "
            "WHERE id = %s AND user_id = %s AND state <> 'cancelled' AND expires_at > now()",
            (export_id, user_id),
        ).fetchone()


def files(conn: Connection[Any], export_id: UUID) -> list[ExportFile]:
    with conn.cursor(row_factory=class_row(ExportFile)) as cur:
        return cur.execute(
            "SELECT seq, resource_type, line_count FROM fhir_export_files WHERE export_id = %s ORDER BY seq",
            (export_id,),
        ).fetchall()


def file_body(conn: Connection[Any], export_id: UUID, seq: int) -> bytes | None:
    """The gzip NDJSON of one file."""
    with conn.cursor(row_factory=scalar_row) as cur:
        body: bytes | None = cur.execute(
            "SELECT ndjson_gzip FROM fhir_export_files WHERE export_id = %s AND seq = %s", (export_id, seq)
        ).fetchone()
    return bytes(body) if body is not None else None


def cancel(conn: Connection[Any], export_id: UUID) -> None:
    """The job cancelled (a running one stops at its next file) and its files deleted."""
    conn.execute("UPDATE fhir_exports SET state = 'cancelled', finished_at = now() WHERE id = %s", (export_id,))
    conn.execute("DELETE FROM fhir_export_files WHERE export_id = %s", (export_id,))


__all__ = [
    "ExportFile",
    "JobStatus",
    "StartedJob",
    "add_file",
    "cancel",
    "complete",
    "create",
    "exportable_patients",
    "fail",
    "file_body",
    "files",
    "heartbeat",
    "is_member",
    "job_of",
    "readings",
    "set_patient_count",
    "start",
]
