// A plain-language chart of one kind's readings: the plan's green zone as a band, each reading as a point whose
// shape and colour say its zone, and the same data as a table for those who do not read charts.
import { h, s } from "../dom.js";
import { t } from "../i18n.js";
import { number, shortDay, dateTime } from "./shell.js";

const W = 640;
const H = 220;
const PAD = { left: 76, right: 14, top: 16, bottom: 36 };
const SHAPE = { green: "circle", yellow: "diamond", red: "triangle" };

function extent(item) {
  const values = item.points.map((p) => p.value);
  const z = item.zones || {};
  for (const v of [z.yellow_low, z.yellow_high]) if (v !== null && v !== undefined) values.push(v);
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (low === high) {
    low -= 1;
    high += 1;
  }
  const margin = (high - low) * 0.1;
  return [low - margin, high + margin];
}

function marker(zone, x, y) {
  const cls = `pt pt-${zone ?? "none"}`;
  if (zone === "red") return s("path", { class: cls, d: `M${x},${y - 7} L${x + 7},${y + 6} L${x - 7},${y + 6} Z` });
  if (zone === "yellow") return s("path", { class: cls, d: `M${x},${y - 7} L${x + 7},${y} L${x},${y + 7} L${x - 7},${y} Z` });
  return s("circle", { class: cls, cx: x, cy: y, r: 5 });
}

export function kindChart(item) {
  const [low, high] = extent(item);
  const times = item.points.map((p) => new Date(p.measured_at).getTime());
  const t0 = Math.min(...times);
  const t1 = Math.max(...times, t0 + 3600_000);
  const x = (ms) => PAD.left + ((ms - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v) => PAD.top + (1 - (v - low) / (high - low)) * (H - PAD.top - PAD.bottom);
  const z = item.zones;
  const fmt = (v) => number(v, item.decimals);
  const latest = item.latest;
  const lowSet = z && z.yellow_low !== null;
  const highSet = z && z.yellow_high !== null;
  let zonesText = t("chart_no_zones");
  if (lowSet && highSet) zonesText = t("chart_zones", { low: fmt(z.yellow_low), high: fmt(z.yellow_high) });
  else if (highSet) zonesText = t("chart_zones_upto", { high: fmt(z.yellow_high) });
  else if (lowSet) zonesText = t("chart_zones_from", { low: fmt(z.yellow_low) });
  const summary = t("chart_summary", { name: item.name, count: item.points.length, value: `${fmt(latest.value)} ${item.unit}`, zones: zonesText });
  const parts = [];
  if (z) {
    const top = z.yellow_high ?? high;
    const bottom = z.yellow_low ?? low;
    parts.push(s("rect", { class: "band-green", x: PAD.left, y: y(Math.min(top, high)), width: W - PAD.left - PAD.right, height: Math.max(0, y(Math.max(bottom, low)) - y(Math.min(top, high))) }));
  }
  for (const v of [low + (high - low) * 0.1, (low + high) / 2, high - (high - low) * 0.1]) {
    parts.push(s("text", { class: "axis", x: PAD.left - 6, y: y(v) + 7, "text-anchor": "end" }, fmt(v)));
  }
  parts.push(s("text", { class: "axis", x: PAD.left, y: H - 8 }, shortDay.format(new Date(t0))));
  parts.push(s("text", { class: "axis", x: W - PAD.right, y: H - 8, "text-anchor": "end" }, shortDay.format(new Date(t1))));
  if (item.points.length > 1) {
    parts.push(s("polyline", { class: "line", points: item.points.map((p, i) => `${x(times[i])},${y(p.value)}`).join(" ") }));
  }
  item.points.forEach((p, i) => parts.push(marker(p.zone, x(times[i]), y(p.value))));
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": summary }, parts);
  const rows = [...item.points].reverse().slice(0, 60).map((p) =>
    h("tr", {}, h("td", {}, dateTime.format(new Date(p.measured_at))), h("td", {}, `${fmt(p.value)} ${item.unit}`), h("td", {}, p.zone ? t(`zone_title_${p.zone}`) : "–")),
  );
  return h(
    "figure",
    { class: "card kind-chart" },
    h("figcaption", {}, h("h3", {}, item.name), h("p", {}, summary)),
    svg,
    h(
      "details",
      {},
      h("summary", {}, t("table_show")),
      h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("table_time")), h("th", { scope: "col" }, t("table_value")), h("th", { scope: "col" }, t("table_zone")))), h("tbody", {}, rows)),
    ),
  );
}
