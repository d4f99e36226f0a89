"""The journal outbox for people: entries waiting for or refused by a record system, and a manual retry.

Administrators see every entry (ids, states and errors only, never Bundle content); clinicians see the entries of
patients in their care, with those patients' names. Every look and every retry is audited."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from psycopg import Connection, sql

from clinician_api import paging, problems
from clinician_api.access import Principal, visible_patients_clause
from clinician_api.deps import Conn, CurrentPrincipal, client_addr
from clinician_api.journal.schemas import EntryKind, EntryState, JournalEntry, JournalPage, JournalPatient
from store import audit, journal

router = APIRouter(prefix="/api/v1/journal", tags=["journal"], responses=problems.responses(401, 403))
_NOT_FOUND = "no such journal entry for your care teams"


def _may_use(principal: Principal) -> None:
    if not (principal.is_admin or principal.is_clinician):
        raise HTTPException(403, f"this needs a clinical or admin role; you are {principal.role}")


def _scope(principal: Principal) -> tuple[sql.Composable | None, list[Any]]:
    """Admins: every entry (None). Clinicians: entries naming a patient they have a duty of care for."""
    if principal.is_admin:
        return None, []
    clause, params = visible_patients_clause(principal)
    return clause, list(params)


def _entry(row: journal.Entry) -> JournalEntry:
    return JournalEntry.model_validate(row, from_attributes=True)


def _named(conn: Connection[Any], principal: Principal, entries: list[JournalEntry]) -> list[JournalEntry]:
    """Clinicians get the names of the entries' patients they have a duty of care for; administrators ids only."""
    ids = sorted({p for e in entries for p in e.patient_ids}, key=str)
    if principal.is_admin or not ids:
        return entries
    clause, params = visible_patients_clause(principal)
    known = {
        p.id: JournalPatient(id=p.id, display_name=p.display_name, team_id=p.team_id)
        for p in journal.entry_patients(conn, ids, clause, params)
    }
    return [e.model_copy(update={"patients": [known[p] for p in e.patient_ids if p in known]}) for e in entries]


def _audit(conn: Connection[Any], principal: Principal, action: str, request: Request, patient_ids: list[UUID]) -> None:
    if principal.is_admin or not patient_ids:
        audit.record(conn, principal, action, request.url.path, "ok", client_addr=client_addr(request))
    else:
        audit.record_patients(conn, principal, action, request.url.path, patient_ids, client_addr=client_addr(request))


@router.get("/entries", response_model=JournalPage, responses=problems.responses(400))
def list_entries(
    conn: Conn,
    principal: CurrentPrincipal,
    request: Request,
    state: Annotated[list[EntryState] | None, Query(description="Default: pending and failed")] = None,
    kind: Annotated[list[EntryKind] | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JournalPage:
    """Outbox entries, newest first: what waits for a record system (with its next attempt) and what it refused
    (with its answer)."""
    _may_use(principal)
    clause, params = _scope(principal)
    before = None
    if cursor:
        created_at, entry_id = paging.decode("journal", cursor, (paging.parse_time, UUID))
        before = (created_at, entry_id)
    rows = journal.entries_page(
        conn, clause, params, list(state or ("pending", "failed")), list(kind) if kind else None, before, limit + 1
    )
    shown, next_cursor = paging.page(rows, limit, lambda r: (r.created_at, r.id), "journal")
    items = _named(conn, principal, [_entry(r) for r in shown])
    _audit(conn, principal, "list", request, sorted({p for i in items for p in i.patient_ids}, key=str))
    return JournalPage(items=items, next=next_cursor)


def _one(conn: Connection[Any], principal: Principal, request: Request, entry_id: UUID) -> JournalEntry:
    clause, params = _scope(principal)
    row = journal.entry(conn, entry_id, clause, params)
    if row is None:
        audit.record(conn, principal, "read", request.url.path, "denied", client_addr=client_addr(request))
        conn.commit()
        raise HTTPException(404, _NOT_FOUND)
    return _entry(row)


@router.get("/entries/{entry_id}", response_model=JournalEntry, responses=problems.responses(404))
def get_entry(entry_id: UUID, conn: Conn, principal: CurrentPrincipal, request: Request) -> JournalEntry:
    """One entry with its delivery history summary (attempts, last answer, where the record system stored it)."""
    _may_use(principal)
    entry = _one(conn, principal, request, entry_id)
    _audit(conn, principal, "read", request, entry.patient_ids)
    return _named(conn, principal, [entry])[0]


@router.post("/entries/{entry_id}/retry", response_model=JournalEntry, responses=problems.responses(404, 409))
def retry_entry(entry_id: UUID, conn: Conn, principal: CurrentPrincipal, request: Request) -> JournalEntry:
    """Send a failed (or waiting) entry again now, with a fresh attempt budget — after the cause was fixed."""
    _may_use(principal)
    entry = _one(conn, principal, request, entry_id)
    if entry.state == "delivered":
        raise HTTPException(409, "the entry is already delivered")
    updated = journal.retry(conn, entry_id)
    assert updated is not None
    _audit(conn, principal, "journal_retry", request, entry.patient_ids)
    return _named(conn, principal, [_entry(updated)])[0]
