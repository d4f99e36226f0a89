"""The nurse and clinician web dashboard: server-rendered page frames (Jinja2, `clinician_api/templates`) in
bokmål or English, and small ES modules (`clinician_api/static/js`) that call the JSON API with the user's bearer
token. The pages hold no patient data themselves; every patient datum goes through the API's duty-of-care checks
and audit."""

from clinician_api.dashboard.router import STATIC_DIR, router

__all__ = ["STATIC_DIR", "router"]
