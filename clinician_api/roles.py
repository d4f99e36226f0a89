"""The user roles: the one list every other place (token checks, the users table's constraint in migration 0111,
the admin commands, the API's schemas and the OIDC role mapping) takes its names from.

- `nurse`, `physician`: clinicians; see their care teams' patients (and break the glass).
- `admin`: operates the platform; no clinical duty of care.
- `data_export`: runs FHIR bulk exports of its care teams' patients for research and registries, and nothing else:
  it cannot open a patient's record, the alarm queue or any other clinical route.
"""

from __future__ import annotations

NURSE = "nurse"
PHYSICIAN = "physician"
ADMIN = "admin"
DATA_EXPORT = "data_export"

ROLES = (NURSE, PHYSICIAN, ADMIN, DATA_EXPORT)
CLINICAL_ROLES = (NURSE, PHYSICIAN)
OIDC_PRIORITY = {ADMIN: 0, PHYSICIAN: 1, NURSE: 2, DATA_EXPORT: 3}
"""When an OIDC token carries several Varde roles, the lowest number wins."""
