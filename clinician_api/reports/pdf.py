"""The period summary report as a PDF (A4), in bokmål or English: patient and period, adherence, one chart per
measurement kind with the patient's zones shaded behind the readings, the alarms and what was done, plan changes
and hand-overs. reportlab draws everything itself, in the PDF standard fonts (no font files, no system libraries).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from reportlab.graphics.shapes import Circle, Drawing, Line, PolyLine, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle
from reportlab.platypus.flowables import Flowable

from clinician_api.reports.period import PeriodReport, Zones
from vitals import KINDS, Kind

ZONE_FILL = {
    "red": colors.Color(0.96, 0.80, 0.80),
    "yellow": colors.Color(1.0, 0.94, 0.72),
    "green": colors.Color(0.85, 0.94, 0.85),
}
POINT = {"red": colors.Color(0.70, 0.05, 0.05), "yellow": colors.Color(0.60, 0.45, 0.0), "green": colors.black}

TEXT: dict[str, dict[str, str]] = {
    "nb": {
        "title": "Oppsummering av hjemmeoppfølging",
        "patient": "Pasient",
        "national_id": "Fødselsnummer",
        "birth_date": "Fødselsdato",
        "team": "Behandlingsteam",
        "organisation": "Virksomhet",
        "period": "Periode",
        "generated": "Laget",
        "adherence": "Etterlevelse av måleplanen",
        "adherence_line": "{taken} av {planned} planlagte målinger tatt ({percent} %)",
        "adherence_none": "Ingen planlagte målinger i perioden",
        "measurements": "Målinger",
        "no_readings": "Ingen målinger i perioden.",
        "chart_caption": "{n} målinger, {low}–{high} {unit}. Felt: grønn, gul og rød sone i pasientens grenser.",
        "alarms": "Alarmer og tiltak",
        "no_alarms": "Ingen alarmer i perioden.",
        "col_opened": "Åpnet",
        "col_severity": "Alvorlighet",
        "col_alarm": "Alarm",
        "col_done": "Hva ble gjort",
        "open": "Ikke løst",
        "plan_changes": "Endringer i egenbehandlingsplanen",
        "no_plan_changes": "Ingen endringer i perioden.",
        "plan_line": "Versjon {version}: {status}",
        "created": "laget {at}",
        "activated": "aktivert {at}",
        "retired": "avsluttet {at}",
        "by": "av {by}",
        "handovers": "Overføringer",
        "no_handovers": "Ingen overføringer i perioden.",
        "handover_line": "{at}: fra {source} til {to} ({state})",
        "handover_proposed": "foreslått",
        "handover_accepted": "akseptert",
        "handover_declined": "avslått",
        "handover_withdrawn": "trukket tilbake",
        "handover_situation": "Situasjon",
        "handover_plan": "Plan",
        "handover_watch": "Følg med på",
        "page": "Side {n}",
        "severity_red": "Rød",
        "severity_yellow": "Gul",
        "severity_missed": "Manglende måling",
        "severity_needs_review": "Til vurdering",
        "status_active": "aktiv",
        "status_draft": "utkast",
        "status_retired": "avsluttet",
    },
    "en": {
        "title": "Home monitoring summary",
        "patient": "Patient",
        "national_id": "National identity number",
        "birth_date": "Date of birth",
        "team": "Care team",
        "organisation": "Organisation",
        "period": "Period",
        "generated": "Generated",
        "adherence": "Adherence to the measurement schedule",
        "adherence_line": "{taken} of {planned} planned measurements taken ({percent} %)",
        "adherence_none": "No planned measurements in the period",
        "measurements": "Measurements",
        "no_readings": "No readings in the period.",
        "chart_caption": "{n} readings, {low}–{high} {unit}. Bands: green, yellow and red zone of the patient's "
        "limits.",
        "alarms": "Alarms and actions",
        "no_alarms": "No alarms in the period.",
        "col_opened": "Opened",
        "col_severity": "Severity",
        "col_alarm": "Alarm",
        "col_done": "What was done",
        "open": "Not resolved",
        "plan_changes": "Changes to the self-management plan",
        "no_plan_changes": "No changes in the period.",
        "plan_line": "Version {version}: {status}",
        "created": "created {at}",
        "activated": "activated {at}",
        "retired": "retired {at}",
        "by": "by {by}",
        "handovers": "Hand-overs",
        "no_handovers": "No hand-overs in the period.",
        "handover_line": "{at}: from {source} to {to} ({state})",
        "handover_proposed": "proposed",
        "handover_accepted": "accepted",
        "handover_declined": "declined",
        "handover_withdrawn": "withdrawn",
        "handover_situation": "Situation",
        "handover_plan": "Plan",
        "handover_watch": "What to watch",
        "page": "Page {n}",
        "severity_red": "Red",
        "severity_yellow": "Yellow",
        "severity_missed": "Missed measurement",
        "severity_needs_review": "Needs review",
        "status_active": "active",
        "status_draft": "draft",
        "status_retired": "retired",
    },
}


def _fmt_number(value: float, decimals: int, lang: str) -> str:
    text = f"{value:.{decimals}f}"
    return text.replace(".", ",") if lang == "nb" else text


class _Chart(Flowable):
    """One kind's readings over the period, on the patient's zone bands."""

    def __init__(self, report: PeriodReport, kind: str, width: float, height: float, tz: ZoneInfo, lang: str):
        super().__init__()
        self.report, self.kind, self.width, self.height, self.tz, self.lang = report, kind, width, height, tz, lang

    def wrap(self, aw: float, ah: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        drawing = chart(self.report, self.kind, self.width, self.height, self.tz, self.lang)
        drawing.drawOn(self.canv, 0, 0)


def _axis_range(values: Sequence[float], zones: Zones, info: Any) -> tuple[float, float]:
    finite = [v for v in (zones.red_low, zones.yellow_low, zones.yellow_high, zones.red_high) if math.isfinite(v)]
    low = min([*values, *finite])
    high = max([*values, *finite])
    pad = max((high - low) * 0.1, 1.0 if info.decimals == 0 else 0.2)
    return max(info.plausible_low, low - pad), min(info.plausible_high, high + pad)


def _rect(x: float, y: float, w: float, h: float, fill: Any = None, stroke: Any = None) -> Rect:
    rect = Rect(x, y, w, h)
    rect.fillColor, rect.strokeColor, rect.strokeWidth = fill, stroke, 0.5
    return rect


def chart(report: PeriodReport, kind: str, width: float, height: float, tz: ZoneInfo, lang: str) -> Drawing:
    info = KINDS[Kind(kind)]
    points = report.series[kind]
    zones = report.zones[kind]
    left, bottom, right, top = 34.0, 16.0, 6.0, 6.0
    plot_w, plot_h = width - left - right, height - bottom - top
    lo, hi = _axis_range([v for _, v in points], zones, info)
    t0, t1 = report.start.timestamp(), report.end.timestamp()

    def x(at: datetime) -> float:
        return left + plot_w * (at.timestamp() - t0) / max(1.0, t1 - t0)

    def y(value: float) -> float:
        return bottom + plot_h * (min(max(value, lo), hi) - lo) / max(1e-9, hi - lo)

    d = Drawing(width, height)
    bands = [
        (lo, zones.red_low, "red"),
        (zones.red_low, zones.yellow_low, "yellow"),
        (zones.yellow_low, zones.yellow_high, "green"),
        (zones.yellow_high, zones.red_high, "yellow"),
        (zones.red_high, hi, "red"),
    ]
    for a, b, zone in bands:
        a, b = max(a, lo), min(b, hi)
        if b > a:
            d.add(_rect(left, y(a), plot_w, y(b) - y(a), fill=ZONE_FILL[zone]))
    d.add(_rect(left, bottom, plot_w, plot_h, stroke=colors.grey))
    for value in (lo, (lo + hi) / 2, hi):
        d.add(String(left - 3, y(value) - 3, _fmt_number(value, info.decimals, lang), fontSize=7, textAnchor="end"))
    days = max(1, round((t1 - t0) / 86400))
    step = max(1, days // 6)
    for i in range(0, days + 1, step):
        at = datetime.fromtimestamp(t0 + i * 86400, UTC)
        d.add(Line(x(at), bottom, x(at), bottom - 2, strokeColor=colors.grey, strokeWidth=0.5))
        d.add(String(x(at), bottom - 10, f"{at.astimezone(tz):%d.%m}", fontSize=7, textAnchor="middle"))
    coords = [c for at, v in points for c in (x(at), y(v))]
    if len(points) > 1:
        d.add(PolyLine(coords, strokeColor=colors.Color(0.2, 0.2, 0.45), strokeWidth=0.8))
    for at, v in points:
        zone = zones.zone(v)
        d.add(Circle(x(at), y(v), 1.8 if zone == "green" else 2.4, fillColor=POINT[zone], strokeColor=None))
    return d


def render(report: PeriodReport, lang: str = "nb") -> bytes:
    t = TEXT["en" if lang == "en" else "nb"]
    lang = "en" if lang == "en" else "nb"
    tz = ZoneInfo(report.patient.timezone or "Europe/Oslo")

    def when(at: datetime | None, time: bool = True) -> str:
        if at is None:
            return "–"
        return f"{at.astimezone(tz):%d.%m.%Y %H:%M}" if time else f"{at.astimezone(tz):%d.%m.%Y}"

    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], fontSize=9, leading=12)
    small = ParagraphStyle("small", parent=body, fontSize=7.5, leading=9.5, textColor=colors.Color(0.25, 0.25, 0.25))
    h1 = ParagraphStyle("h1", parent=styles["Heading1"], fontSize=16, spaceAfter=6)
    h2 = ParagraphStyle("h2", parent=styles["Heading2"], fontSize=12, spaceBefore=10, spaceAfter=4, keepWithNext=1)
    h3 = ParagraphStyle("h3", parent=styles["Heading3"], fontSize=10, spaceBefore=6, spaceAfter=2, keepWithNext=1)

    def p(text: str, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(_escape(text), style)

    patient = report.patient
    facts = [
        (t["patient"], patient.name),
        (t["national_id"], patient.national_id or "–"),
        (t["birth_date"], f"{patient.birth_date:%d.%m.%Y}" if patient.birth_date else "–"),
        (t["team"], patient.team_name),
        (t["organisation"], patient.organisation[1] if patient.organisation else "–"),
        (t["period"], f"{report.first_day:%d.%m.%Y} – {report.last_day:%d.%m.%Y}"),
        (t["generated"], when(report.generated_at or datetime.now(UTC))),
    ]
    story: list[Flowable] = [p(t["title"], h1)]
    facts_table = Table([[p(k), p(v)] for k, v in facts], colWidths=[45 * mm, 120 * mm])
    facts_table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))
    story += [facts_table, p(t["adherence"], h2)]
    if report.planned:
        percent = _fmt_number(report.adherence or 0.0, 0, lang)
        story.append(p(t["adherence_line"].format(taken=report.taken, planned=report.planned, percent=percent)))
    else:
        story.append(p(t["adherence_none"]))

    story.append(p(t["measurements"], h2))
    if not report.series:
        story.append(p(t["no_readings"]))
    width = A4[0] - 40 * mm
    for kind in sorted(report.series, key=lambda k: list(KINDS).index(Kind(k))):
        info = KINDS[Kind(kind)]
        values = [v for _, v in report.series[kind]]
        name = info.name_nb if lang == "nb" else info.name_en
        caption = t["chart_caption"].format(
            n=len(values),
            low=_fmt_number(min(values), info.decimals, lang),
            high=_fmt_number(max(values), info.decimals, lang),
            unit=info.unit_display,
        )
        story += [
            p(f"{name} ({info.unit_display})", h3),
            _Chart(report, kind, width, 46 * mm, tz, lang),
            p(caption, small),
        ]

    story.append(p(t["alarms"], h2))
    if not report.alarms:
        story.append(p(t["no_alarms"]))
    else:
        rows: list[list[Any]] = [[p(t[c]) for c in ("col_opened", "col_severity", "col_alarm", "col_done")]]
        for a in report.alarms:
            done = [a.resolution or t["open"]] if a.state == "resolved" else [t["open"]]
            done += list(a.notes)
            if a.resolved_at:
                done.append(f"{when(a.resolved_at)}{' ' + t['by'].format(by=a.resolved_by) if a.resolved_by else ''}")
            rows.append(
                [
                    p(when(a.opened_at)),
                    p(t.get(f"severity_{a.severity}", a.severity)),
                    p(a.explanation_nb if lang == "nb" else a.explanation_en),
                    Paragraph("<br/>".join(_escape(x) for x in done), body),
                ]
            )
        table = Table(rows, colWidths=[27 * mm, 24 * mm, 62 * mm, 57 * mm], repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
                    ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.grey),
                ]
            )
        )
        story.append(table)

    story.append(p(t["plan_changes"], h2))
    if not report.plan_changes:
        story.append(p(t["no_plan_changes"]))
    for change in report.plan_changes:
        parts = [t["plan_line"].format(version=change.version, status=t.get(f"status_{change.status}", change.status))]
        parts.append(t["created"].format(at=when(change.created_at)))
        if change.activated_at:
            parts.append(t["activated"].format(at=when(change.activated_at)))
        if change.retired_at:
            parts.append(t["retired"].format(at=when(change.retired_at)))
        if change.by:
            parts.append(t["by"].format(by=change.by))
        story.append(p(", ".join(parts)))

    story.append(p(t["handovers"], h2))
    if not report.handovers:
        story.append(p(t["no_handovers"]))
    for handover in report.handovers:
        state = t.get(f"handover_{handover.state}", handover.state)
        decided = f", {when(handover.decided_at)}" if handover.decided_at else ""
        story.append(
            p(
                t["handover_line"].format(
                    at=when(handover.proposed_at), source=handover.from_team, to=handover.to_team, state=state + decided
                ),
                h3,
            )
        )
        for label, text in (
            ("handover_situation", handover.situation),
            ("handover_plan", handover.plan),
            ("handover_watch", handover.watch),
        ):
            story.append(p(f"{t[label]}: {text}"))

    buffer = io.BytesIO()
    title = f"{t['title']} – {patient.name}"

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.drawString(
            20 * mm, 10 * mm, f"Varde · {patient.name} · {report.first_day:%d.%m.%Y} – {report.last_day:%d.%m.%Y}"
        )
        canvas.drawRightString(A4[0] - 20 * mm, 10 * mm, t["page"].format(n=doc.page))
        canvas.restoreState()

    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=title,
        author="Varde",
        lang=lang,
        invariant=True,
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


def _escape(text: str) -> str:
    """Paragraph text is reportlab's mini-markup: the patient's and nurses' words go in as text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
