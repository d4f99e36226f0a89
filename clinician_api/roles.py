"""What the API does with the user roles (`vitals.vocabulary.Role`, the one list of their names): named constants
for the route guards and the OIDC role mapping's priority.

`data_export` runs FHIR bulk exports for research and registries, and nothing else: it cannot open a patient's
record, the alarm queue or any other clinical route.
"""

from __future__ import annotations

from typing import Final

from vitals.vocabulary import CLINICAL_ROLES as CLINICAL_ROLES
from vitals.vocabulary import ROLES as ROLES
from vitals.vocabulary import Role

NURSE: Final[Role] = "nurse"
PHYSICIAN: Final[Role] = "physician"
ADMIN: Final[Role] = "admin"
DATA_EXPORT: Final[Role] = "data_export"

OIDC_PRIORITY: dict[str, int] = {ADMIN: 0, PHYSICIAN: 1, NURSE: 2, DATA_EXPORT: 3}
"""When an OIDC token carries several Varde roles, the lowest number wins."""
