"""The one logging setup of every Varde process (cloud services and the gateway agent).

Log lines are `event key=value ...` messages. `VARDE_LOG_FORMAT=json` (or `fmt="json"`) writes one JSON object per
line instead — `ts`, `level`, `logger`, `event`, the `key=value` pairs as fields, and `exc` for a traceback — for a
log shipper. Either way, values that could identify a patient (`patient=`, `name=`, an 11-digit national identity
number) are replaced by `[redacted]` before the line is written. Standard library only: the gateway uses it too.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

FORMATS = ("text", "json")
REDACTED = "[redacted]"

_IDENTIFYING_KEYS = ("patient", "patient_id", "patient_ids", "name", "display_name", "national_id", "fnr", "ssn")
_KEY_VALUE = re.compile(r"(?<![\w.])([A-Za-z_][\w.]*)=(\"[^\"]*\"|\S+)")
_IDENTIFYING_PAIR = re.compile(rf"(?<![\w.])({'|'.join(_IDENTIFYING_KEYS)})=(\"[^\"]*\"|\S+)")
_NATIONAL_ID = re.compile(r"(?<!\d)\d{6}[ -]?\d{5}(?!\d)")
_EVENT = re.compile(r"^[a-z][a-z0-9_.]*$")


def redact(message: str) -> str:
    """The message with identifying values replaced (patient ids and names, national identity numbers)."""
    message = _IDENTIFYING_PAIR.sub(lambda m: f"{m.group(1)}={REDACTED}", message)
    return _NATIONAL_ID.sub(REDACTED, message)


def _coerce(value: str) -> Any:
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        return value[1:-1]
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return {"True": True, "False": False, "true": True, "false": False, "None": None}.get(value, value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: the event name and its `key=value` fields parsed out of the message."""

    def format(self, record: logging.LogRecord) -> str:
        message = redact(record.getMessage())
        head, _, rest = message.partition(" ")
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if _EVENT.match(head) and "=" not in head:
            doc["event"] = head
            fields = {m.group(1): _coerce(m.group(2)) for m in _KEY_VALUE.finditer(rest)}
            if fields:
                doc["fields"] = fields
        doc["msg"] = message
        if record.exc_info:
            doc["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(doc, ensure_ascii=False, default=str)


class _RedactingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(
    level: str | int | None = None,
    fmt: str | None = None,
    *,
    timestamps: bool = True,
    stream: TextIO | None = None,
) -> None:
    """Configure the root logger once for the process. `level`/`fmt` default to `VARDE_LOG_LEVEL` (INFO) and
    `VARDE_LOG_FORMAT` (text); `timestamps=False` leaves them to journald (the gateway under systemd)."""
    chosen_level = level or os.environ.get("VARDE_LOG_LEVEL") or "INFO"
    chosen_fmt = (fmt or os.environ.get("VARDE_LOG_FORMAT") or "text").lower()
    if chosen_fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {chosen_fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    if chosen_fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        layout = "%(levelname)s %(name)s %(message)s"
        handler.setFormatter(_RedactingTextFormatter(f"%(asctime)s {layout}" if timestamps else layout))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(chosen_level.upper() if isinstance(chosen_level, str) else chosen_level)


__all__ = ["FORMATS", "JsonFormatter", "redact", "setup_logging"]
