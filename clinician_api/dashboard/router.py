"""Page routes of the dashboard. Each page is a frame rendered in the user's language; its ES module fetches the
data from the JSON API with the bearer token the user got at sign-in (kept in the tab's sessionStorage)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Cookie, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from clinician_api.dashboard.i18n import LANG_COOKIE, Lang, pick, strings, vocabulary
from clinician_api.deps import SettingsDep
from vitals.vocabulary import PROTOCOLS, SEVERITIES

# The pages and assets live in clinician_api/templates and clinician_api/static, the package data of
# `clinician_api` (pyproject.toml), so a wheel install serves the same dashboard as a checkout.
_PACKAGE = Path(__file__).resolve().parent.parent
STATIC_DIR = _PACKAGE / "static"
PREFIX = "/dashboard"

# Only this project's own scripts, styles and images; data only from the same origin (the API).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

_env = Environment(
    loader=FileSystemLoader(_PACKAGE / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
)
# The pages' option lists come from the one vocabulary, in its order (severities worst first).
_env.globals.update(protocols=PROTOCOLS, severities=SEVERITIES)
templates = Jinja2Templates(env=_env)
router = APIRouter(include_in_schema=False)

LangCookie = Annotated[str | None, Cookie(alias=LANG_COOKIE)]


def _page(request: Request, lang_cookie: str | None, page: str, status: int = 200, **extra: Any) -> HTMLResponse:
    lang = pick(lang_cookie)
    other: Lang = "en" if lang == "nb" else "nb"
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    context = {
        "lang": lang,
        "other_lang": other,
        "other_lang_name": strings(other)["language_name"],
        "t": strings(lang),
        "page": page,
        "switch_href": f"{PREFIX}/lang/{other}?next={quote(path, safe='')}",
        "config": {**vocabulary(lang), "page": page, **extra},
        **extra,
    }
    response = templates.TemplateResponse(request, f"{page}.html", context, status_code=status)
    response.headers["content-security-policy"] = CSP
    return response


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/", status_code=303)


@router.get(PREFIX)
@router.get(f"{PREFIX}/")
def queue_page(request: Request, varde_lang: LangCookie = None) -> HTMLResponse:
    return _page(request, varde_lang, "queue")


@router.get(f"{PREFIX}/login")
def login_page(request: Request, settings: SettingsDep, varde_lang: LangCookie = None) -> HTMLResponse:
    # Sign-in through the staff issuer (HelseID-like) when one is configured (clinician_api/citizen/oidc.py).
    from clinician_api.citizen.oidc import issuer_for

    reason = request.query_params.get("reason")
    return _page(
        request,
        varde_lang,
        "login",
        staff_oidc=issuer_for(settings, "staff") is not None,
        oidc_problem=reason if reason in ("oidc_failed", "oidc_unknown") else None,
    )


@router.get(f"{PREFIX}/patients")
def patients_page(request: Request, varde_lang: LangCookie = None) -> HTMLResponse:
    return _page(request, varde_lang, "patients")


@router.get(f"{PREFIX}/worklist")
def worklist_page(request: Request, varde_lang: LangCookie = None) -> HTMLResponse:
    return _page(request, varde_lang, "worklist")


@router.get(f"{PREFIX}/population")
def population_page(request: Request, varde_lang: LangCookie = None) -> HTMLResponse:
    return _page(request, varde_lang, "population")


@router.get(f"{PREFIX}/journal")
def journal_page(request: Request, varde_lang: LangCookie = None) -> HTMLResponse:
    return _page(request, varde_lang, "journal")


@router.get(f"{PREFIX}/burden")
def burden_page(request: Request, varde_lang: LangCookie = None) -> HTMLResponse:
    return _page(request, varde_lang, "burden")


@router.get(f"{PREFIX}/audit")
def audit_page(request: Request, varde_lang: LangCookie = None) -> HTMLResponse:
    return _page(request, varde_lang, "audit")


def _patient_id(raw: str) -> str | None:
    try:
        return str(UUID(raw))
    except ValueError:
        return None


@router.get(f"{PREFIX}/patients/{{patient_id}}")
def patient_page(request: Request, patient_id: str, varde_lang: LangCookie = None) -> HTMLResponse:
    valid = _patient_id(patient_id)
    if valid is None:
        return _page(request, varde_lang, "not_found", status=404)
    return _page(request, varde_lang, "patient", patient_id=valid)


@router.get(f"{PREFIX}/patients/{{patient_id}}/edit")
def edit_page(request: Request, patient_id: str, varde_lang: LangCookie = None) -> HTMLResponse:
    valid = _patient_id(patient_id)
    if valid is None:
        return _page(request, varde_lang, "not_found", status=404)
    return _page(request, varde_lang, "edit", patient_id=valid)


def safe_next(target: str | None) -> str:
    """A local dashboard path to return to; anything else (other hosts, scheme-relative URLs) goes to the queue."""
    if target is None or "\\" in target or not (target == PREFIX or target.startswith(f"{PREFIX}/")):
        return f"{PREFIX}/"
    return target


@router.get(f"{PREFIX}/lang/{{lang}}")
def switch_language(request: Request, lang: str, next_: Annotated[str | None, Query(alias="next")] = None) -> Response:
    """Remember the language in a cookie (a preference, not a credential) and go back to the page."""
    response = RedirectResponse(safe_next(next_), status_code=303)
    response.set_cookie(
        LANG_COOKIE,
        pick(lang),
        max_age=365 * 24 * 3600,
        samesite="lax",
        httponly=True,
        secure=request.url.scheme == "https",
        path="/",
    )
    return response
