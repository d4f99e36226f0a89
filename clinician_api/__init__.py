"""The clinician API: alarm queue, trends, plans, access by duty of care, audit, FHIR R4, and the web dashboard."""
