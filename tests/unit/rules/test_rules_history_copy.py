"""The rules' history arrives as PostgreSQL binary COPY and is read in place by numpy: the parser reads the
format's rows and refuses anything that is not the four fixed-width, never-NULL fields it expects."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import numpy as np
import pytest

from store.rules_inputs import epoch_seconds, history_rows

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)


def _row(row: int, kind: int, at: int, value: float) -> bytes:
    return struct.pack(">hiiiiiqid", 4, 4, row, 4, kind, 8, at, 8, value)


def test_rows_are_read_in_place() -> None:
    data = HEADER + _row(1, 2, 1_765_000_000, 93.0) + _row(2, 0, 1_765_003_600, 80.4) + TRAILER
    rows = history_rows(data)
    assert rows["row"].tolist() == [1, 2]
    assert rows["kind"].tolist() == [2, 0]
    assert rows["at"].tolist() == [1_765_000_000, 1_765_003_600]
    assert np.allclose(rows["value"], [93.0, 80.4])


def test_no_rows() -> None:
    assert len(history_rows(HEADER + TRAILER)) == 0


def test_a_header_extension_is_skipped() -> None:
    data = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 3) + b"abc" + _row(1, 1, 5, 1.5) + TRAILER
    assert history_rows(data)["value"].tolist() == [1.5]


@pytest.mark.parametrize(
    "data",
    [
        b"COPY" + _row(1, 2, 3, 4.0) + TRAILER,  # not binary COPY
        HEADER + _row(1, 2, 3, 4.0),  # no trailer
        HEADER + _row(1, 2, 3, 4.0)[:-1] + TRAILER,  # a cut row
        # a NULL value (length −1, no data) in a row padded back to the record size
        HEADER + struct.pack(">hiiiiiqi", 4, 4, 1, 4, 2, 8, 3, -1) + b"\0" * 8 + TRAILER,
        # an int8 where an int4 belongs, padded so the size alone does not give it away
        HEADER + struct.pack(">hiqiiiqid", 4, 8, 1, 0, 2, 8, 3, 8, 4.0)[:42] + TRAILER,
    ],
)
def test_another_layout_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="history"):
        history_rows(data)


def _pg_us(at: datetime) -> int:
    delta = at - datetime(2000, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def test_binary_timestamps_become_unix_seconds_floored_like_the_batch_s() -> None:
    times = [
        datetime(2000, 1, 1, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 600_000, tzinfo=UTC),
        datetime(2026, 12, 7, 7, 20, 5, 700_000, tzinfo=UTC),
    ]
    got = epoch_seconds(np.array([_pg_us(t) for t in times], dtype=">i8"))
    assert got.tolist() == [int(t.timestamp()) for t in times] == [946_684_800, 946_684_799, 1_796_628_005]
