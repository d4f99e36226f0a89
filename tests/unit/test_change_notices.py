"""Change notices: every changed alarm id reaches the listeners, whatever the size of the change."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from store.events import IDS_PER_NOTICE, ChangeNotice, notices


def test_a_large_change_is_split_into_notices_that_together_name_every_alarm_once() -> None:
    ids = [uuid4() for _ in range(2 * IDS_PER_NOTICE + 37)]
    sent = list(notices("ingest", ids, readings=500))
    assert len(sent) == 3
    received = [a for n in sent for a in ChangeNotice.parse(n.payload()).alarms]
    assert received == ids
    assert all(len(n.payload().encode()) < 8000 for n in sent)  # PostgreSQL's payload limit
    assert [ChangeNotice.parse(n.payload()).readings for n in sent] == [500, 0, 0]


def test_a_batch_that_stored_readings_but_changed_no_alarm_still_announces_the_readings() -> None:
    (only,) = notices("ingest", [], readings=12)
    assert ChangeNotice.parse(only.payload()) == ChangeNotice("ingest", [], 12)
    assert list(notices("api", [])) == []


def test_the_same_alarm_named_twice_in_a_change_is_announced_once() -> None:
    alarm = uuid4()
    (only,) = notices("api", [alarm, alarm])
    assert only.alarms == [alarm]


@pytest.mark.parametrize(
    "payload",
    ["", "not json", "[1, 2]", '{"alarms": "x"}', '{"alarms": ["nope", 3]}', '{"readings": "many"}', "null"],
)
def test_an_unreadable_notice_names_nothing_and_does_not_raise(payload: str) -> None:
    notice = ChangeNotice.parse(payload)
    assert notice.alarms == [] and notice.readings == 0


def test_a_notice_keeps_the_good_ids_of_a_partly_bad_list() -> None:
    good = UUID("0b7f3c4e-5d1a-5b7e-9a51-0c2f4e8d9a10")
    assert ChangeNotice.parse(f'{{"source": "api", "alarms": ["bad", "{good}"]}}').alarms == [good]
