// The patient view: latest values with their zone, trend charts with the patient's limits, alarm history,
// devices and gateway status, and the active self-management plan.
import { ApiError, api } from "./api.js";
import { $, $$, badge, h, replaceChildren } from "./dom.js";
import { trendChart } from "./chart.js";
import { showNoAccess } from "./glass.js";
import { alarmStates, formatAge, formatTime, kindName, lang, maybe, patientId, severityRank, t, withUnit } from "./i18n.js";
import { planSummary } from "./plan.js";
import { renderSchedule } from "./schedule.js";
import { me, signedIn } from "./shell.js";

const RANGES = {
  day: { hours: 24, bucket: "hour" },
  week: { hours: 24 * 7, bucket: "hour" },
  "30d": { hours: 24 * 30, bucket: "day" },
  "90d": { hours: 24 * 90, bucket: "day" },
};
const LOW_BATTERY = 20;
let range = null;
let state = null;

function base() {
  return `/api/v1/patients/${patientId}`;
}

async function load() {
  let detail;
  try {
    detail = await api(base());
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      showNoAccess(load);
      return;
    }
    $("#loading").textContent = t("error_generic", { detail: error.message });
    return;
  }
  const [latest, thresholds, plans, schedule, alarms, user] = await Promise.all([
    api(`${base()}/latest`),
    api(`${base()}/thresholds`),
    api(`${base()}/plans`),
    api(`${base()}/schedule`),
    api("/api/v1/alarms", {
      query: { patient_id: patientId, state: alarmStates, lang, limit: 200 },
    }),
    me,
  ]);
  state = { detail, latest, thresholds, plans, schedule, alarms: alarms.items, user };
  render();
  await renderCharts();
}

function render() {
  const { detail, user } = state;
  document.title = `${detail.display_name} · Varde`;
  $("#patient-name").textContent = detail.display_name;
  const facts = [
    detail.conditions?.length ? detail.conditions.map((c) => t(`protocol_${c}`)).join(" + ") : t(`protocol_${detail.protocol}`),
    detail.team_name,
    detail.birth_date ? t("born", { date: detail.birth_date }) : null,
    detail.last_measured_at ? t("last_measured", { age: formatAge(detail.last_measured_at) }) : t("never_measured"),
  ].filter(Boolean);
  $("#patient-facts").textContent = facts.join(" · ");
  $("#edit-link").href = `/dashboard/patients/${patientId}/edit`;
  // Read-only access (consultative, or a hand-over awaiting the caller's team): the server refuses changes.
  $("#edit-link").hidden = detail.access === "consultative" || detail.access === "handover";
  const grant = user.emergency_access.find((g) => g.patient_id === patientId);
  if (detail.emergency_access) {
    $("#emergency-text").textContent = t("emergency_banner", {
      until: grant ? formatTime(grant.expires_at) : "–",
      reason: grant ? grant.reason : "",
    });
    $("#emergency-banner").hidden = false;
  }
  renderLatest();
  renderAlarms();
  renderGateways();
  renderPlan();
  renderSchedule($("#measurement-schedule"), state.schedule);
  $("#loading").hidden = true;
  $("#patient").hidden = false;
}

/** Open alarms that judge a kind by more than its latest value (trends, baseline drift): shown on its tile. */
function openTrendAlarms(kind) {
  return state.alarms
    .filter((a) => a.state !== "resolved" && a.kind === kind && !a.rule.startsWith("threshold.") && a.severity !== "missed")
    .sort((a, b) => severityRank[a.severity] - severityRank[b.severity]);
}

function renderLatest() {
  const items = state.latest.items.map((item) => {
    const trends = openTrendAlarms(item.kind);
    const worst = trends[0];
    const zone = worst && severityRank[worst.severity] < severityRank[item.zone] ? worst.severity : item.zone;
    return h(
      "li",
      { class: `value zone-${zone}`, "data-kind": item.kind, "data-zone": zone },
      h("span", { class: "kind" }, kindName(item.kind)),
      h("span", { class: "number" }, withUnit(item.kind, item.value)),
      badge(item.zone, t(`zone_${item.zone}`)),
      h("time", { datetime: item.measured_at, title: formatTime(item.measured_at) }, formatAge(item.measured_at)),
      trends.map((alarm) =>
        h(
          "p",
          { class: "tile-alarm" },
          badge(alarm.severity, t("trend_alarm", { severity: t(`severity_${alarm.severity}`) })),
          " ",
          alarm.headline || alarm.explanation,
        ),
      ),
    );
  });
  replaceChildren($("#latest"), items);
  $("#latest-empty").hidden = items.length > 0;
}

function eventText(event) {
  const who = event.actor_name ?? t("event_system");
  const detail = event.data?.text ?? event.data?.resolution ?? "";
  return `${formatTime(event.at)} · ${maybe(`event_${event.event}`, event.event)} · ${who}${detail ? `: ${detail}` : ""}`;
}

/** The alarm's history (opened, acknowledged, notes, resolution), loaded when the user opens it. */
function alarmEvents(alarm) {
  const list = h("ol", { class: "events" });
  const details = h("details", { class: "alarm-events" }, h("summary", {}, t("alarm_events")), list);
  details.addEventListener("toggle", async () => {
    if (!details.open || list.childElementCount) return;
    const detail = await api(`/api/v1/alarms/${alarm.id}`, { query: { lang } });
    replaceChildren(list, detail.events.map((event) => h("li", {}, eventText(event))));
  });
  return details;
}

function historyActions(alarm) {
  if (alarm.state === "resolved") return null;
  const button = (action, label) =>
    h(
      "button",
      {
        type: "button",
        class: action === "acknowledge" ? "primary small" : "secondary small",
        "data-action": action,
        "aria-label": `${label}: ${alarm.headline || alarm.explanation}`,
        onclick: () => historyAct(alarm, action),
      },
      label,
    );
  return h(
    "div",
    { class: "actions history-actions" },
    alarm.state === "open" && button("acknowledge", t("action_ack")),
    button("note", t("action_note")),
    button("resolve", t("action_resolve")),
  );
}

let historyState = null;

function askText(alarm, action) {
  const dialog = $("#history-dialog");
  historyState = { alarm, action, opener: document.activeElement };
  $("#history-dialog-title").textContent = t(action === "note" ? "dialog_note_title" : "dialog_resolve_title");
  $("#history-dialog-context").textContent = alarm.headline || alarm.explanation;
  $("#history-text-label").textContent = t(action === "note" ? "dialog_note_label" : "dialog_resolve_label");
  $("#history-submit").textContent = t(action === "note" ? "action_note_save" : "action_resolve");
  $("#history-text").value = "";
  $("#history-error").textContent = "";
  dialog.showModal();
  $("#history-text").focus();
}

function closeHistoryDialog() {
  const opener = historyState?.opener;
  $("#history-dialog").close();
  historyState = null;
  if (opener?.isConnected) opener.focus();
}

async function historyAct(alarm, action, text) {
  const message = $("#history-message");
  if (action !== "acknowledge" && text === undefined) {
    askText(alarm, action);
    return;
  }
  const path = { acknowledge: "acknowledge", note: "notes", resolve: "resolve" }[action];
  const body = action === "note" ? { text } : action === "resolve" ? { resolution: text } : undefined;
  try {
    const updated = await api(`/api/v1/alarms/${alarm.id}/${path}`, { method: "POST", body, query: { lang } });
    state.alarms = state.alarms.map((a) => (a.id === updated.id ? updated : a));
    message.textContent = t({ acknowledge: "done_ack", note: "done_note", resolve: "done_resolve" }[action], {
      patient: state.detail.display_name,
    });
    renderAlarms();
    renderLatest();
  } catch (error) {
    message.textContent = t("error_generic", { detail: error.message });
  }
}

function setupHistoryDialog() {
  $("#history-cancel").addEventListener("click", closeHistoryDialog);
  $("#history-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!historyState) return;
    const { alarm, action } = historyState;
    const text = $("#history-text").value.trim();
    if (text.length < (action === "resolve" ? 3 : 1)) {
      $("#history-error").textContent = t(action === "resolve" ? "error_resolution_short" : "error_note_empty");
      $("#history-text").focus();
      return;
    }
    closeHistoryDialog();
    await historyAct(alarm, action, text);
  });
}

function renderAlarms() {
  const rows = [...state.alarms]
    .sort((a, b) => new Date(b.opened_at) - new Date(a.opened_at))
    .map((alarm) =>
      h(
        "tr",
        { class: `sev-${alarm.severity}`, id: `history-${alarm.id}` },
        h("td", {}, badge(alarm.severity, t(`severity_${alarm.severity}`))),
        h(
          "td",
          {},
          alarm.headline || alarm.explanation,
          alarm.headline_measured_at ? h("div", { class: "muted" }, t("measured_at", { time: formatTime(alarm.headline_measured_at) })) : null,
          alarm.last_note ? h("div", { class: "muted" }, `${t("note_label")} ${alarm.last_note}`) : null,
          alarm.resolution ? h("div", { class: "muted" }, t("resolution", { text: alarm.resolution })) : null,
          alarmEvents(alarm),
        ),
        h("td", {}, h("time", { datetime: alarm.opened_at }, formatTime(alarm.opened_at))),
        h(
          "td",
          {},
          t(`state_${alarm.state}`),
          alarm.assignee_name ? h("div", { class: "muted" }, alarm.assignee_name) : null,
          historyActions(alarm),
        ),
      ),
    );
  replaceChildren($("#alarm-history tbody"), rows);
  $("#alarm-history").hidden = rows.length === 0;
  $("#alarms-empty").hidden = rows.length > 0;
}

function renderGateways() {
  const gateways = state.detail.gateways.map((g) => {
    const online = g.state === "online";
    const devices = g.devices.map((d) => {
      const low = d.battery_percent !== null && d.battery_percent < LOW_BATTERY;
      return h(
        "tr",
        {},
        h("th", { scope: "row" }, maybe(`device_${d.type}`, d.type), d.model ? h("div", { class: "muted" }, d.model) : null),
        h(
          "td",
          { class: low ? "battery-low" : "" },
          d.battery_percent === null ? "–" : [low ? h("span", { "aria-hidden": "true" }, "⚠ ") : null, `${d.battery_percent} %`, low ? ` (${t("battery_low")})` : ""],
        ),
        h("td", {}, h("time", { datetime: d.last_seen_at, title: formatTime(d.last_seen_at) }, formatAge(d.last_seen_at))),
      );
    });
    return h(
      "div",
      { class: "gateway", "data-gateway": g.id },
      h(
        "p",
        {},
        h("strong", {}, t("gateway")),
        ` ${g.id} · `,
        h(
          "span",
          { class: `status status-${g.state ?? "unknown"}` },
          h("span", { "aria-hidden": "true" }, online ? "● " : g.state ? "○ " : "? "),
          t(g.state ? `gateway_${g.state}` : "gateway_unknown"),
        ),
      ),
      h(
        "p",
        { class: "muted" },
        t("gateway_facts", {
          seen: g.last_seen_at ? formatAge(g.last_seen_at) : "–",
          backlog: g.outbox_depth ?? "–",
          version: g.agent_version ?? "–",
        }),
      ),
      devices.length
        ? h(
            "table",
            { class: "list compact" },
            h("caption", { class: "visually-hidden" }, t("devices")),
            h("thead", {}, h("tr", {}, [t("col_device"), t("col_battery"), t("col_last_seen")].map((c) => h("th", { scope: "col" }, c)))),
            h("tbody", {}, devices),
          )
        : h("p", { class: "muted" }, t("no_devices")),
    );
  });
  replaceChildren($("#gateways"), gateways.length ? gateways : h("p", { class: "muted" }, t("no_gateways")));
}

function renderPlan() {
  const active = state.plans.items.find((p) => p.status === "active");
  replaceChildren($("#plan"), active ? planSummary(active) : h("p", { class: "muted" }, t("no_active_plan")));
}

/** The shortest range that shows all the data of the last 90 days (a patient followed for 14 days gets 30 days). */
function fittingRange(series) {
  const starts = series.flatMap((one) => one.items.map((b) => new Date(b.start).getTime()));
  if (starts.length === 0) return "week";
  const hours = (Date.now() - Math.min(...starts)) / 3600e3;
  return ["day", "week", "30d", "90d"].find((name) => RANGES[name].hours >= hours) ?? "90d";
}

function pressRange() {
  for (const button of $$("[data-range]")) button.setAttribute("aria-pressed", String(button.dataset.range === range));
}

async function renderCharts() {
  const container = $("#charts");
  if (range === null) {
    range = "90d";
    const series = await fetchSeries();
    const fit = fittingRange(series);
    range = fit;
    pressRange();
    if (fit === "90d") {
      drawCharts(series);
      return;
    }
  }
  drawCharts(await fetchSeries());
}

async function fetchSeries() {
  const spec = RANGES[range];
  const to = new Date();
  const from = new Date(to.getTime() - spec.hours * 3600e3);
  const kinds = state.latest.items.map((item) => item.kind);
  $("#charts").setAttribute("aria-busy", "true");
  return Promise.all(
    kinds.map((kind) =>
      api(`${base()}/measurements`, {
        query: { kind, bucket: spec.bucket, from: from.toISOString(), to: to.toISOString() },
      }),
    ),
  );
}

function drawCharts(series) {
  const container = $("#charts");
  const limits = new Map(state.thresholds.kinds.map((k) => [k.kind, k]));
  const missed = state.alarms.filter((a) => a.severity === "missed");
  const kinds = state.latest.items.map((item) => item.kind);
  const charts = kinds.map((kind, i) => trendChart({ kind, series: series[i], limits: limits.get(kind), range, missed }));
  replaceChildren(container, charts.length ? charts : h("p", { class: "muted" }, t("no_measurements")));
  container.setAttribute("aria-busy", "false");
}

for (const button of $$("[data-range]")) {
  button.addEventListener("click", async () => {
    range = button.dataset.range;
    pressRange();
    if (state) await renderCharts();
  });
}

setupHistoryDialog();
if (signedIn) load();
