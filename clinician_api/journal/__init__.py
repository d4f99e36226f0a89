"""Record integration (journalføring): resolved alarms and shared measurements journaled to the
patient's electronic record over FHIR R4, through a durable outbox that loses nothing.

- `bundles`: document Bundles for resolved alarms and episode steps (hand-overs), and measurement Bundles (pure;
  reuses `clinician_api.fhir`)
- `identity`: Norwegian identifier systems, stable ids, redaction of national ids
- `outbox`: entries written in the transaction of what they record; claimed with SKIP LOCKED; dead letters
- `feed`: measurement subscriptions with a high-water mark
- `credentials`, `delivery`: OAuth2 client credentials and one delivery attempt, sorted into delivered/retry/refused
- `worker`: the `varde journal run` loop; `admin`: configuration
"""

from clinician_api.journal.outbox import enqueue_alarm_document, enqueue_episode_step

__all__ = ["enqueue_alarm_document", "enqueue_episode_step"]
