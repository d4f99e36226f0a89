"""Escalation that reaches someone: notices for escalated alarms, sent to the care team's escalation targets (the
on-call nurse's phone, a team mailbox, a webhook) through a pluggable channel.

A notice row is written by a database trigger in the very transaction that escalates an alarm (the scheduler's
automatic escalation of unacknowledged red alarms and a nurse's "Escalate" alike), so none is lost. The API process
runs one `Notifier` thread that claims due notices with `FOR UPDATE SKIP LOCKED` (several replicas may run), sends
them and records the outcome; a failed send is retried with back-off, `MAX_ATTEMPTS` times.

The text names no patient: severity, care team, how long it waited, a short reference and the queue's address.
The notices' rows are `store.escalation_notices`'.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from typing import Any, Protocol

import httpx
import psycopg

from clinician_api.background import ListeningWorker
from store import escalation_notices, events
from store.alarms import touch_for_escalation_notice
from store.settings import Settings

log = logging.getLogger("varde.escalation")
MAX_ATTEMPTS = 5
POLL_SECONDS = 5.0
CHANNELS = ("sms", "email", "webhook")


Notice = escalation_notices.ClaimedNotice
"""A due notice with what its text names (never the patient) and where it goes."""


def notice_text(notice: Notice, dashboard_url: str) -> str:
    """The message: the alarm's colour, the team, how long it has waited, the queue's address and a reference."""
    word = {"red": "Rød", "yellow": "Gul"}.get(notice.severity, "Ny")
    return (
        f"Varde: {word} alarm eskalert i {notice.team}, ikke håndtert på {notice.waited_minutes} min. "
        f"Se alarmkøen: {dashboard_url} (ref {notice.alarm_ref})"
    )


class Channel(Protocol):
    def send(self, notice: Notice, text: str) -> None:
        """Deliver or raise (any exception is a failed attempt)."""


class WebhookChannel:
    """POST a JSON body to the target's URL (an on-call system, a chat bridge)."""

    def send(self, notice: Notice, text: str) -> None:
        body = {"text": text, "alarm_ref": notice.alarm_ref, "severity": notice.severity, "team": notice.team}
        httpx.post(notice.address, json=body, timeout=10.0).raise_for_status()


class SmsChannel:
    """An SMS gateway's HTTP API: POST {"to", "text"} to `VARDE_ESCALATION_SMS_URL`."""

    def __init__(self, url: str | None) -> None:
        self.url = url

    def send(self, notice: Notice, text: str) -> None:
        if not self.url:
            raise RuntimeError("no SMS gateway configured (VARDE_ESCALATION_SMS_URL)")
        httpx.post(self.url, json={"to": notice.address, "text": text}, timeout=10.0).raise_for_status()


class EmailChannel:
    def __init__(self, host: str | None, port: int, sender: str) -> None:
        self.host, self.port, self.sender = host, port, sender

    def send(self, notice: Notice, text: str) -> None:
        if not self.host:
            raise RuntimeError("no mail server configured (VARDE_ESCALATION_SMTP_HOST)")
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, notice.address, "Varde: eskalert alarm"
        message.set_content(text)
        with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
            smtp.send_message(message)


def channels_for(settings: Settings) -> dict[str, Channel]:
    return {
        "webhook": WebhookChannel(),
        "sms": SmsChannel(settings.escalation_sms_url),
        "email": EmailChannel(
            settings.escalation_smtp_host, settings.escalation_smtp_port, settings.escalation_mail_from
        ),
    }


def claim(conn: psycopg.Connection[Any], limit: int = 20) -> list[Notice]:
    """Due notices, each marked as attempted (back-off doubles from 30 s) so another replica does not take it."""
    rows = escalation_notices.claim_due(conn, limit)
    conn.commit()
    return rows


def deliver(
    conn: psycopg.Connection[Any], notices: list[Notice], channels: Mapping[str, Channel], dashboard_url: str
) -> int:
    """Send each notice and record the outcome; returns how many were sent."""
    sent = 0
    for notice in notices:
        try:
            channels[notice.channel].send(notice, notice_text(notice, dashboard_url))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            escalation_notices.mark_failed(conn, notice.id, error, MAX_ATTEMPTS)
            log.warning("escalation_notice_failed notice=%d channel=%s error=%s", notice.id, notice.channel, error)
        else:
            escalation_notices.mark_sent(conn, notice.id)
            sent += 1
            log.info("escalation_notice_sent notice=%d channel=%s", notice.id, notice.channel)
        touch_for_escalation_notice(conn, notice.id)  # the queue shows who was notified
        conn.commit()
    return sent


class Notifier(ListeningWorker):
    """The API process's sender thread: wakes on `varde_escalations` notifications and every POLL_SECONDS."""

    def __init__(self, database_url: Callable[[], str], settings: Settings) -> None:
        channels = channels_for(settings)
        dashboard = f"{(settings.api_url or '').rstrip('/')}/dashboard/"
        super().__init__(
            "escalation-notifier",
            events.Channel.ESCALATIONS,
            database_url,
            lambda conn: deliver(conn, claim(conn), channels, dashboard),
            POLL_SECONDS,
        )
