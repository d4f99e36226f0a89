"""The interactive API documentation, /docs (Swagger UI), served from the installed `fastapi-offline` package's copy
of its files: no CDN, as closed hospital networks have no internet. The page holds no inline script (Swagger UI is
started by our own /static/js/docs.js), so its content security policy allows scripts, styles and data from this
origin only. There is no /redoc: ReDoc's bundle loads its logo from the vendor's CDN."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_URL = "/docs/assets"

_COMMON = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; connect-src 'self'"
SWAGGER_CSP = f"{_COMMON}; script-src 'self'; style-src 'self'; img-src 'self' data:"

_SWAGGER_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Varde clinician API</title>
<link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css">
<link rel="icon" href="{ASSETS_URL}/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS_URL}/swagger-ui-bundle.js"></script>
<script src="/static/js/docs.js"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    return HTMLResponse(_SWAGGER_PAGE, headers={"content-security-policy": SWAGGER_CSP})


def assets() -> StaticFiles:
    return StaticFiles(directory=ASSETS_DIR)


__all__ = ["ASSETS_URL", "SWAGGER_CSP", "assets", "router"]
