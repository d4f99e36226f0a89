"""Gateway enrolment: a gateway exchanges the one-time code from its installer's QR for its broker password.

Unauthenticated by design (the code is the credential), limited per client address, audited either way.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from clinician_api import problems
from clinician_api.deps import Conn, SettingsDep, client_addr
from clinician_api.ratelimit import Budget, give_back, take
from store import audit
from store.gateway_enrolment import claim_enrolment

router = APIRouter(prefix="/api/v1", tags=["gateways"])


class EnrolmentClaim(BaseModel):
    gateway_id: Annotated[str, Field(pattern=r"^gw-[a-z0-9][a-z0-9-]{1,60}$")]
    code: Annotated[str, Field(min_length=16, max_length=64)]


class EnrolmentGrant(BaseModel):
    gateway_id: str
    username: str
    password: str


@router.post("/gateways/enrol", response_model=EnrolmentGrant, responses=problems.responses(404, 429))
def enrol(
    claim: EnrolmentClaim,
    conn: Conn,
    request: Request,
    response: Response,
    settings: SettingsDep,
) -> EnrolmentGrant:
    """Spend a gateway's one-time enrolment code and return its broker password (once)."""
    addr = client_addr(request)
    resource = f"gateways/{claim.gateway_id}/enrol"
    attempt = take(conn, [Budget(f"enrol:{addr or 'unknown'}", settings.login_attempts_per_account)])
    if (retry_after := attempt.retry_after) is not None:
        audit.record(conn, None, "gateway_enrol", resource, "rate_limited", client_addr=addr)
        conn.commit()
        raise HTTPException(
            429, f"too many enrolment attempts; try again in {retry_after} s", headers={"Retry-After": str(retry_after)}
        )
    password = claim_enrolment(conn, claim.gateway_id, claim.code, addr)
    audit.record(conn, None, "gateway_enrol", resource, "ok" if password else "denied", client_addr=addr)
    if password is None:
        conn.commit()
        raise HTTPException(
            404, "no such enrolment code: wrong, already used or expired; ask for a new one (varde gateway rotate)"
        )
    give_back(conn, attempt)
    response.headers["Cache-Control"] = "no-store"
    return EnrolmentGrant(gateway_id=claim.gateway_id, username=claim.gateway_id, password=password)
