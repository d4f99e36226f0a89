"""Page routes of "Min oppfølging", the patient app: frames rendered in the user's language (the dashboard's
language cookie and the same content security policy); each page's ES module fetches its data from
`/api/v1/min/…` with the session cookie."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from clinician_api.citizen import oidc
from clinician_api.citizen.routes import password_login_enabled, safe_min_next
from clinician_api.dashboard.i18n import LANG_COOKIE, Lang, pick, word_lists
from clinician_api.dashboard.router import CSP, LangCookie, templates
from clinician_api.deps import SettingsDep

router = APIRouter(include_in_schema=False)
PREFIX = "/min"
PAGES = ("home", "plan", "questionnaire", "messages", "log", "sharing")
_I18N = Path(__file__).resolve().parent.parent / "templates" / "i18n"


@cache
def min_strings(lang: Lang) -> dict[str, str]:
    """The patient app's strings (`templates/i18n/min.<lang>.json`)."""
    loaded: dict[str, str] = json.loads((_I18N / f"min.{lang}.json").read_text(encoding="utf-8"))
    return loaded


def _page(request: Request, lang_cookie: str | None, page: str, **extra: Any) -> HTMLResponse:
    lang = pick(lang_cookie)
    other: Lang = "en" if lang == "nb" else "nb"
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    t = min_strings(lang)
    context = {
        "lang": lang,
        "other_lang": other,
        "other_lang_name": min_strings(other)["language_name"],
        "t": t,
        "page": page,
        "switch_href": f"{PREFIX}/lang/{other}?next={quote(path, safe='')}",
        "config": {"lang": lang, "page": page, "strings": t, "kinds": {}, **word_lists(), **extra},
        **extra,
    }
    response = templates.TemplateResponse(request, f"min/{page}.html", context)
    response.headers["content-security-policy"] = CSP
    return response


@router.get(PREFIX)
def min_root() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/", status_code=303)


@router.get(f"{PREFIX}/")
def home_page(request: Request, varde_lang: LangCookie = None) -> HTMLResponse:
    return _page(request, varde_lang, "home")


@router.get(f"{PREFIX}/{{page}}")
def other_page(request: Request, page: str, settings: SettingsDep, varde_lang: LangCookie = None) -> Response:
    if page == "login":
        return _page(
            request,
            varde_lang,
            "login",
            national=oidc.issuer_for(settings, "patient") is not None,
            password=password_login_enabled(settings),
        )
    if page not in PAGES:
        return RedirectResponse(f"{PREFIX}/", status_code=303)
    return _page(request, varde_lang, page)


@router.get(f"{PREFIX}/lang/{{lang}}")
def switch_language(request: Request, lang: str, next_: Annotated[str | None, Query(alias="next")] = None) -> Response:
    response = RedirectResponse(safe_min_next(next_), status_code=303)
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


@router.get("/dashboard/oidc")
def staff_oidc_page(request: Request, varde_lang: LangCookie = None) -> HTMLResponse:
    """Where the staff issuer's sign-in lands: its script trades the one-time code for the dashboard's token."""
    from clinician_api.dashboard.router import _page as dashboard_page

    return dashboard_page(request, varde_lang, "oidc")
