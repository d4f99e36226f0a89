"""The worklist's urgency order and SLA table, the population overview's zone/trend/adherence arithmetic and CSV,
the period report's zones and its DocumentReference, and the settings that tune the worklist."""

from __future__ import annotations

import base64
import csv
import io
import math
import uuid
from datetime import UTC, date, datetime, timedelta

import pypdfium2
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.documentreference import DocumentReference
from pydantic import ValidationError

from clinician_api import population, worklist
from clinician_api.reports import document, pdf
from clinician_api.reports.period import AlarmLine, HandoverLine, PatientInfo, PeriodReport, Zones
from clinician_api.routes.worklist import ItemType
from store.settings import Settings

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
TEAM = uuid.uuid4()


def _item(sla: str, opened_minutes_ago: float, key: str = "k") -> worklist.WorkItem:
    type_ = "alarm" if sla.startswith("alarm.") else sla
    return worklist.item(type_, sla, key, uuid.uuid4(), "P", TEAM, "t", NOW - timedelta(minutes=opened_minutes_ago))


def test_every_provider_has_an_sla_and_a_tier_and_the_api_names_every_type() -> None:
    from typing import get_args

    assert set(worklist.SLAS) == set(worklist.TIERS)
    provided = {s.split(".")[0] for s in worklist.SLAS}
    assert provided == set(worklist.PROVIDERS) == set(get_args(ItemType))


def test_a_fresh_red_alarm_comes_before_an_overdue_item_of_any_other_type() -> None:
    items = [
        _item("plan_review", 60 * 24 * 200, "plan"),
        _item("message", 60 * 30, "message"),
        _item("alarm.red", 1, "red"),
        _item("alarm.yellow", 10, "yellow"),
        _item("inactive_patient", 60, "inactive"),
    ]
    assert [i.key for i in worklist.urgency(items)] == ["red", "message", "yellow", "plan", "inactive"]


def test_sla_clock_is_overdue_from_the_moment_the_sla_runs_out() -> None:
    red = _item("alarm.red", 15)
    assert red.due_at == NOW and red.overdue(NOW) and not red.overdue(NOW - timedelta(seconds=1))


@pytest.mark.parametrize(
    ("last_week", "week_before", "trend"),
    [(2, 0, "worse"), (1, 2, "improving"), (0, 0, "stable"), (2, 2, "stable"), (0, 1, "improving")],
)
def test_trend_compares_the_worst_alarm_of_the_last_seven_days_with_the_seven_before(
    last_week: int, week_before: int, trend: str
) -> None:
    assert population.trend_of(last_week, week_before) == trend


def test_zone_adherence_and_burden_arithmetic() -> None:
    assert [population.zone_of(s) for s in (0, 1, 2)] == ["green", "yellow", "red"]
    assert population.percent(5, 7) == 71.4 and population.percent(0, 0) is None
    assert population.per_week(3, 3, 28) == 0.25 and population.per_week(1, 0, 28) == 0.0


def _line(zone: str, trend: str, planned: int, taken: int, alarms: int, name: str = "Kari") -> population.PatientLine:
    return population.PatientLine(uuid.uuid4(), name, TEAM, "Team A", zone, trend, planned, taken, alarms, 28)  # type: ignore[arg-type]


def test_team_summary_adds_up_zones_trends_adherence_and_alarms() -> None:
    (team,) = population.summarise(
        [_line("red", "worse", 10, 5, 4), _line("green", "stable", 10, 10, 0), _line("green", "improving", 0, 0, 1)],
        28,
    )
    assert team.zones == {"red": 1, "yellow": 0, "green": 2}
    assert team.trends == {"worse": 1, "stable": 1, "improving": 1}
    assert team.zone_trends["green"] == {"worse": 0, "stable": 1, "improving": 1}
    assert team.adherence == 75.0 and team.alarms_per_patient_week == round(5 / 12, 2)


def test_csv_export_cannot_carry_a_spreadsheet_formula() -> None:
    text = population.to_csv(
        [_line("red", "worse", 4, 3, 2, name='=HYPERLINK("x")'), _line("green", "stable", 0, 0, 0)]
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["patient"] == '\'=HYPERLINK("x")' and rows[0]["adherence_percent"] == "75.0"
    assert rows[1]["adherence_percent"] == "" and tuple(rows[0]) == population.CSV_COLUMNS


def test_zone_limits_are_strict_and_missing_limits_never_breach() -> None:
    zones = Zones(88.0, 92.0, math.inf, math.inf)
    assert [zones.zone(v) for v in (87.9, 88.0, 91.9, 92.0, 100.0)] == ["red", "yellow", "yellow", "green", "green"]


def _report() -> PeriodReport:
    start = NOW - timedelta(days=14)
    patient = PatientInfo(
        uuid.uuid4(),
        "Ola <Nordmann>",
        "01017012345",
        date(1950, 1, 1),
        "copd",
        "Europe/Oslo",
        "Lungeteam",
        (uuid.uuid4(), "Kommune", "123456789"),
    )
    series = {"spo2": [(start + timedelta(days=d, hours=8), 94.0 - d % 3) for d in range(14)]}
    alarm = AlarmLine(
        start + timedelta(days=3),
        "yellow",
        "spo2",
        "SpO2 91 %",
        "SpO2 91%",
        "resolved",
        start + timedelta(days=3, hours=1),
        "Ringte & avtalte ny måling",
        "Åse",
        ("notat",),
    )
    report = PeriodReport(patient, start, NOW, series, {"spo2": Zones(88, 92, math.inf, math.inf)}, [alarm], [], 14, 12)
    report.generated_at = NOW
    return report


def test_report_pdf_has_the_patient_the_chart_caption_and_the_alarm_in_each_language() -> None:
    for lang, words in (
        ("nb", ("Oppsummering", "12 av 14", "Ringte & avtalte")),
        ("en", ("summary", "12 of 14", "Åse")),
    ):
        content = pdf.render(_report(), lang)
        text = pypdfium2.PdfDocument(content)[0].get_textpage().get_text_range()
        assert "Ola <Nordmann>" in text
        for word in words:
            assert word in text, (lang, word)


def test_document_reference_bundle_is_valid_fhir_and_created_only_once_at_the_receiver() -> None:
    report = _report()
    content = pdf.render(report, "nb")
    bundle = document.document_reference_bundle(report, content, "nb", NOW)
    Bundle.model_validate(bundle)
    (entry,) = bundle["entry"]
    DocumentReference.model_validate(entry["resource"])
    identifier = entry["resource"]["identifier"][0]
    assert entry["request"]["ifNoneExist"] == f"identifier={identifier['system']}|{identifier['value']}"
    assert entry["resource"]["subject"]["reference"].startswith("Patient?identifier=")
    assert base64.b64decode(entry["resource"]["content"][0]["attachment"]["data"]) == content
    assert document.document_reference_bundle(report, content, "nb", NOW) == bundle, "a resend is identical"


def test_worklist_limits_come_from_the_environment_and_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VARDE_WORKLIST_INACTIVE_DAYS", "5")
    monkeypatch.setenv("VARDE_WORKLIST_PLAN_REVIEW_DAYS", "30")
    settings = Settings()
    assert (settings.worklist_inactive_days, settings.worklist_plan_review_days) == (5, 30)
    monkeypatch.setenv("VARDE_WORKLIST_INACTIVE_DAYS", "0")
    with pytest.raises(ValidationError):
        Settings()


def test_report_prints_each_hand_over_with_its_note() -> None:
    report = _report()
    report.handovers = [
        HandoverLine(
            NOW - timedelta(days=2),
            "Hjertesviktpoliklinikken",
            "Oslo kommune responssenter",
            "accepted",
            NOW - timedelta(days=1),
            "Stabil etter justering",
            "Daglig vekt",
            "Vektøkning over 2 kg",
        )
    ]
    pages = pypdfium2.PdfDocument(pdf.render(report, "nb"))
    text = " ".join(pages[i].get_textpage().get_text_range() for i in range(len(pages)))
    assert "fra Hjertesviktpoliklinikken til Oslo kommune responssenter (akseptert" in " ".join(text.split())
    assert "Følg med på: Vektøkning over 2 kg" in text


def test_report_names_the_last_day_of_the_period_not_the_midnight_after_it() -> None:
    report = _report()
    report.end = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)  # midnight 7 December in Oslo
    assert report.last_day == date(2026, 12, 6)
    text = pypdfium2.PdfDocument(pdf.render(report, "nb"))[0].get_textpage().get_text_range()
    assert "– 06.12.2026" in text and "07.12.2026" not in text.split("Laget")[0]
