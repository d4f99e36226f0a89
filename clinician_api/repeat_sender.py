"""Requests to measure again, sent to the patient's gateways: ingest writes a repeat request in its transaction
(`rules_engine.repeat_store`), and the API process, which holds the broker login that may publish to gateways,
sends it on the gateway's receipts topic as a `varde.repeat/1` message.

Like the escalation notifier, each API replica runs one `RepeatSender` thread that claims unsent requests with
`FOR UPDATE SKIP LOCKED` (a claim is a 30 s lease, so a replica that dies mid-send leaves the request to another),
publishes, and records `sent_at`. It wakes on `varde_repeats` notifications and every POLL_SECONDS.
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
    rows = conn.execute(
        "WITH due AS (SELECT id FROM repeat_requests WHERE state = 'requested' AND sent_at IS NULL "
        "AND next_send_at <= now() AND due_at > now() AND send_attempts < %s "
        "ORDER BY next_send_at FOR UPDATE SKIP LOCKED LIMIT %s) "
        "UPDATE repeat_requests r SET send_attempts = r.send_attempts + 1, "
        "next_send_at = now() + interval '30 seconds' FROM due WHERE r.id = due.id "
        "RETURNING r.id, r.kind, r.measured_at, r.requested_at, r.due_at, "
        "ARRAY(SELECT g.id FROM gateways g WHERE g.patient_id = r.patient_id AND g.enabled ORDER BY g.id)",
        (MAX_ATTEMPTS, limit),
    ).fetchall()
    conn.commit()
    return [
        Claimed(RepeatRequest(id=r[0], kind=Kind(r[1]), measured_at=r[2], requested_at=r[3], due_at=r[4]), list(r[5]))
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
        conn.execute("UPDATE repeat_requests SET sent_at = now() WHERE id = ANY(%s::uuid[])", (sent,))
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
