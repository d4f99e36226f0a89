// Trend charts drawn as inline SVG: the patient's zones as bands, readings as points (average per bucket with
// its min–max whisker), missed measurements as marked lines, and the same data as a table for screen readers.
import { h, s } from "./dom.js";
import { formatTime, formatValue, formats, kindName, kinds, t, withUnit } from "./i18n.js";

const W = 720;
const H = 240;
// The right margin holds the limit labels ("Yellow > 110", "Rød > 39,0"): wide enough for the longest.
const M = { left: 52, right: 118, top: 14, bottom: 30 };
const LABEL_GAP = 13;
const LIMITS = ["red_low", "yellow_low", "yellow_high", "red_high"];
const BUCKET_MS = { hour: 3600e3, day: 86400e3, week: 7 * 86400e3 };
let chartCount = 0;

/** The zone of a value under limits {red_low: {value}, …}, judged as the rules do (strictly beyond a limit). */
export function zoneOf(value, limits) {
  const v = (name) => limits?.[name]?.value ?? null;
  if ((v("red_low") !== null && value < v("red_low")) || (v("red_high") !== null && value > v("red_high"))) return "red";
  if ((v("yellow_low") !== null && value < v("yellow_low")) || (v("yellow_high") !== null && value > v("yellow_high")))
    return "yellow";
  return "green";
}

function niceStep(rough) {
  const power = 10 ** Math.floor(Math.log10(rough));
  const fraction = rough / power;
  return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
}

function timeTicks(from, to, range) {
  const ticks = [];
  const at = new Date(from);
  if (range === "day") {
    at.setMinutes(0, 0, 0);
    while (at.getHours() % 4 !== 0 || at < from) at.setHours(at.getHours() + 1);
    for (; at <= to; at.setHours(at.getHours() + 4)) ticks.push({ time: at.getTime(), label: formats.timeOnly.format(at) });
  } else {
    at.setHours(0, 0, 0, 0);
    if (at < from) at.setDate(at.getDate() + 1);
    const step = range === "week" ? 1 : range === "30d" ? 5 : 14;
    for (; at <= to; at.setDate(at.getDate() + step)) {
      ticks.push({ time: at.getTime(), label: (range === "week" ? formats.weekdayDay : formats.dayMonth).format(at) });
    }
  }
  return ticks;
}

/** A figure with the chart of one kind. `series` is the API's bucketed trend; `missed` are alarms of severity missed. */
export function trendChart({ kind, series, limits, range, missed = [] }) {
  chartCount += 1;
  const id = `chart-${kind}-${chartCount}`;
  const from = new Date(series.from).getTime();
  const to = new Date(series.to).getTime();
  const half = BUCKET_MS[series.bucket] / 2;
  const points = series.items.map((b) => ({ ...b, time: Math.min(new Date(b.start).getTime() + half, to) }));
  const limitValues = LIMITS.map((name) => limits?.[name]?.value ?? null).filter((v) => v !== null);

  const values = points.flatMap((p) => [p.min, p.max]).concat(limitValues);
  let lo = values.length ? Math.min(...values) : (kinds[kind]?.low ?? 0);
  let hi = values.length ? Math.max(...values) : (kinds[kind]?.high ?? 100);
  const pad = Math.max((hi - lo) * 0.12, Math.abs(hi) * 0.02, 1);
  lo -= pad;
  hi += pad;
  const x = (time) => M.left + ((time - from) / (to - from)) * (W - M.left - M.right);
  const y = (value) => M.top + (1 - (value - lo) / (hi - lo)) * (H - M.top - M.bottom);
  const unit = kinds[kind]?.unit_display ?? "";

  // Zone bands: between consecutive limits the zone is constant; judge it at each interval's middle.
  const breaks = [lo, ...limitValues.filter((v) => v > lo && v < hi).sort((a, b) => a - b), hi];
  const bands = [];
  for (let i = 0; i + 1 < breaks.length; i += 1) {
    const [a, b] = [breaks[i], breaks[i + 1]];
    if (b <= a) continue;
    const zone = zoneOf((a + b) / 2, limits);
    bands.push(s("rect", { class: `band band-${zone}`, x: M.left, width: W - M.left - M.right, y: y(b), height: y(a) - y(b) }));
  }

  // Labels of limits close together are moved apart so they never overlap (top to bottom).
  const shownLimits = LIMITS.filter((name) => limits?.[name]?.value !== null && limits?.[name]?.value !== undefined)
    .map((name) => ({ name, value: limits[name].value, yy: y(limits[name].value) }))
    .sort((a, b) => a.yy - b.yy);
  let labelFloor = -Infinity;
  const limitLines = shownLimits.map(({ name, value, yy }) => {
    const labelY = Math.min(Math.max(yy + 4, labelFloor + LABEL_GAP, 10), H - 4);
    labelFloor = labelY;
    return s(
      "g",
      { class: `limit limit-${name.startsWith("red") ? "red" : "yellow"}` },
      s("line", { x1: M.left, x2: W - M.right, y1: yy, y2: yy }),
      s("text", { x: W - M.right + 6, y: labelY }, `${t(`limit_short_${name}`)} ${formatValue(kind, value)}`),
    );
  });

  const step = niceStep((hi - lo) / 5);
  const yTicks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) {
    yTicks.push(
      s(
        "g",
        { class: "tick" },
        s("line", { x1: M.left - 4, x2: M.left, y1: y(v), y2: y(v) }),
        s("text", { x: M.left - 8, y: y(v) + 4, "text-anchor": "end" }, formatValue(kind, v)),
      ),
    );
  }
  const xTicks = timeTicks(new Date(from), new Date(to), range).map((tick) =>
    s(
      "g",
      { class: "tick" },
      s("line", { x1: x(tick.time), x2: x(tick.time), y1: H - M.bottom, y2: H - M.bottom + 4 }),
      s("text", { x: x(tick.time), y: H - M.bottom + 18, "text-anchor": "middle" }, tick.label),
    ),
  );

  const shownMissed = missed.filter((alarm) => {
    const at = new Date(alarm.opened_at).getTime();
    return at >= from && at <= to && (!alarm.kind || alarm.kind === kind);
  });
  const missedMarks = shownMissed.map((alarm) => {
    const xx = x(new Date(alarm.opened_at).getTime());
    return s(
      "g",
      { class: "missed" },
      s("title", {}, `${t("missed_measurement")}: ${formatTime(alarm.opened_at)}`),
      s("line", { x1: xx, x2: xx, y1: M.top, y2: H - M.bottom }),
      s("text", { x: xx, y: M.top + 12, "text-anchor": "middle" }, "✕"),
    );
  });

  const path = points.map((p, i) => `${i ? "L" : "M"}${x(p.time).toFixed(1)},${y(p.avg).toFixed(1)}`).join(" ");
  const marks = points.map((p) => {
    const zone = zoneOf(p.avg, limits);
    const label = `${formatTime(new Date(p.time).toISOString())}: ${withUnit(kind, p.avg)} (${t(`zone_${zone}`)})`;
    return s(
      "g",
      { class: `reading reading-${zone}` },
      p.count > 1 && p.max > p.min && s("line", { class: "whisker", x1: x(p.time), x2: x(p.time), y1: y(p.min), y2: y(p.max) }),
      s("circle", { class: `point point-${zone}`, cx: x(p.time).toFixed(1), cy: y(p.avg).toFixed(1), r: zone === "green" ? 3.5 : 5 }, s("title", {}, label)),
    );
  });

  const summary = points.length
    ? t("chart_summary", {
        n: points.reduce((sum, p) => sum + p.count, 0),
        min: withUnit(kind, Math.min(...points.map((p) => p.min))),
        max: withUnit(kind, Math.max(...points.map((p) => p.max))),
        missed: shownMissed.length,
      })
    : t("chart_empty");

  const svg = s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `${id}-title ${id}-desc`, class: "trend", "data-kind": kind },
    s("title", { id: `${id}-title` }, `${kindName(kind)} (${unit})`),
    s("desc", { id: `${id}-desc` }, summary),
    s("g", { class: "bands" }, bands),
    s("rect", { class: "frame", x: M.left, y: M.top, width: W - M.left - M.right, height: H - M.top - M.bottom }),
    s("g", { class: "y-axis" }, yTicks),
    s("g", { class: "x-axis" }, xTicks),
    s("g", { class: "limits" }, limitLines),
    s("g", { class: "missed-marks" }, missedMarks),
    s("path", { class: "trend-line", d: path || "M0,0" }),
    s("g", { class: "readings" }, marks),
  );

  const table = h(
    "details",
    { class: "chart-table" },
    h("summary", {}, t("chart_as_table")),
    h(
      "table",
      { class: "list compact" },
      h("caption", { class: "visually-hidden" }, `${kindName(kind)} – ${t(`range_${range}`)}`),
      h(
        "thead",
        {},
        h("tr", {}, [t("col_time"), t("col_average"), t("col_min"), t("col_max"), t("col_count"), t("col_zone")].map((c) => h("th", { scope: "col" }, c))),
      ),
      h(
        "tbody",
        {},
        points.map((p) =>
          h(
            "tr",
            {},
            h("td", {}, formatTime(new Date(p.start).toISOString())),
            h("td", {}, withUnit(kind, p.avg)),
            h("td", {}, formatValue(kind, p.min)),
            h("td", {}, formatValue(kind, p.max)),
            h("td", {}, String(p.count)),
            h("td", {}, t(`zone_${zoneOf(p.avg, limits)}`)),
          ),
        ),
        shownMissed.map((alarm) =>
          h("tr", { class: "missed-row" }, h("td", {}, formatTime(alarm.opened_at)), h("td", { colspan: 5 }, `✕ ${t("missed_measurement")}`)),
        ),
      ),
    ),
  );

  return h(
    "figure",
    { class: "chart", id },
    h("figcaption", {}, h("h3", {}, kindName(kind)), h("p", { class: "muted" }, summary)),
    svg,
    table,
  );
}
