"""The crash-loop guard: a message that kills the worker process outright (a fault no `except` catches — the process
killed for memory, a crash inside a C extension) must not go on to kill every worker it is redelivered to.

Only messages that come back are watched: the broker sets the MQTT DUP flag on a message it delivered before and
never got an acknowledgement for. Such messages are marked in `ingest_suspects` before they are processed and
unmarked once handled (stored or dead-lettered). A returning message that is still marked was in the hands of a
worker that died; it is processed again on its own, marked `solo`. One that returns still marked `solo` killed a
worker by itself: it is dead-lettered as `poison_message`, unparsed, and acknowledged; its mark stays, so a later
redelivery is recognised at once. So one message can stop a worker at most three times, never ingest for good.
Normal traffic (no DUP flag) costs nothing here.
"""

from __future__ import annotations

import hashlib

from store.ingest_suspects import clear, mark, marks


def message_key(topic: str, payload: bytes) -> bytes:
    """A message's identity across redeliveries: sha256 of topic and payload."""
    digest = hashlib.sha256(topic.encode())
    digest.update(b"\0")
    digest.update(payload)
    return digest.digest()


__all__ = ["clear", "mark", "marks", "message_key"]
