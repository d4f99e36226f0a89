"""Requests to measure again, sent to the patient's gateways: ingest writes a repeat request in its transaction
(`rules_engine.repeat_store`), and the API process, which holds the broker login that may publish to gateways,
sends it on the gateway's receipts topic as a `varde.repeat/1` message.

Like the escalation notifier, each API replica runs one `RepeatSender` thread that claims unsent requests with
`FOR UPDATE SKIP LOCKED` (a claim is a 30 s lease, so a replica that dies mid-send leaves the request to another),
publishes, and records `sent_at`. It wakes on `varde_repeats` notifications and every POLL_SECONDS. The rows it
claims and marks are `store.repeat_notices`'.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from clinician_api.background import ListeningWorker
from clinician_api.gateway_link import GatewayPublisher, GatewayUnavailable
from store import repeat_notices
from store.events import Channel
from vitals import Kind, RepeatRequest, receipts_topic

log = logging.getLogger("varde.api.repeats")
POLL_SECONDS = 5.0
MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Claimed:
    message: RepeatRequest
    gateways: list[str]


def claim(conn: psycopg.Connection[Any], limit: int = 50) -> list[Claimed]:
    """Unsent requests still waiting for their repeat, each leased for 30 s to this replica."""
    rows = repeat_notices.claim_unsent(conn, MAX_ATTEMPTS, limit)
    conn.commit()
    return [
        Claimed(
            RepeatRequest(
                id=r.id, kind=Kind(r.kind), measured_at=r.measured_at, requested_at=r.requested_at, due_at=r.due_at
            ),
            list(r.gateway_ids),
        )
        for r in rows
    ]


def deliver(conn: psycopg.Connection[Any], claimed: list[Claimed], publisher: GatewayPublisher) -> int:
    """Publish each request to its patient's gateways; returns how many were sent to at least one gateway."""
    sent: list[UUID] = []
    for item in claimed:
        published = 0
        for gateway_id in item.gateways:
            try:
                publisher.publish(receipts_topic(gateway_id), item.message.to_json())
                published += 1
            except GatewayUnavailable as exc:
                log.warning("repeat_request_unsent request=%s error=%s", item.message.id, exc)
        if published:
            sent.append(item.message.id)
        log.info("repeat_request_sent request=%s gateways=%d", item.message.id, published)
    if sent:
        repeat_notices.mark_sent(conn, sent)
    conn.commit()
    return len(sent)


class RepeatSender(ListeningWorker):
    def __init__(self, database_url: Callable[[], str], publisher: GatewayPublisher) -> None:
        super().__init__(
            "repeat-sender",
            Channel.REPEATS,
            database_url,
            lambda conn: deliver(conn, claim(conn), publisher),
            POLL_SECONDS,
        )


__all__ = ["RepeatSender", "claim", "deliver"]
