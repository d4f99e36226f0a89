// The nurse's worklist: all work of the chosen team (or all the user's teams), most urgent first, each item with
// its SLA clock and who is working on it. Filters (type, only mine) apply at once without a reload; the list
// reloads when an alarm of the user's teams changes (the alarm queue's live stream) and every minute, and the clocks
// tick every 15 s. Taking an item keeps the keyboard focus on its button.
import { api } from "./api.js";
import { $, $$, announce, badge, h, preserveFocus, syncRows } from "./dom.js";
import { formatTime, lang, t } from "./i18n.js";
import { currentTeam, me, onTeamChange } from "./shell.js";
import { openStream } from "./sse.js";

const ALARM_TYPES = new Set(["alarm", "missed_measurement"]);
const state = { items: [], user: null, pending: null };

/** Many alarm events in a burst make one reload. */
function loadSoon() {
  clearTimeout(state.pending);
  state.pending = setTimeout(() => load(), 300);
}

function duration(ms) {
  const minutes = Math.max(0, Math.round(ms / 60000));
  if (minutes < 60) return t("duration_minutes", { n: minutes });
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return t("duration_hours", { n: hours, m: minutes % 60 });
  return t("duration_days", { n: Math.floor(hours / 24) });
}

function clock(item, now = Date.now()) {
  const left = new Date(item.due_at).getTime() - now;
  return {
    overdue: left <= 0,
    text: left <= 0 ? t("worklist_sla_over", { time: duration(-left) }) : t("worklist_sla_left", { time: duration(left) }),
  };
}

function shown() {
  const types = new Set($$("#type-filter input:checked").map((box) => box.value));
  const mine = $("#worklist-mine").checked;
  return state.items.filter((i) => types.has(i.type) && (!mine || i.assignee_id === state.user?.id));
}

function typeCell(item) {
  const label = t(`worktype_${item.type}`);
  if (item.type === "alarm") return badge(item.severity, `${label}: ${t(`severity_${item.severity}`)}`);
  if (item.type === "missed_measurement") return badge("missed", label);
  return h("span", { class: "tag" }, label);
}

function row(item) {
  const key = `${item.type}:${item.key}`;
  const sla = clock(item);
  const mine = item.assignee_id && item.assignee_id === state.user?.id;
  const vars = { patient: item.patient_name, title: item.title };
  return h(
    "tr",
    {
      id: `wi-${item.type}-${item.key}`,
      "data-type": item.type,
      "data-overdue": String(sla.overdue),
      class: item.severity ? `sev-${item.severity}` : null,
    },
    h("td", {}, typeCell(item)),
    h("th", { scope: "row" }, h("a", { href: item.link }, item.patient_name)),
    h("td", { class: "alarm-cell" }, item.title),
    h(
      "td",
      { class: sla.overdue ? "sla sla-over" : "sla" },
      h("time", { datetime: item.due_at, title: formatTime(item.due_at) }, sla.text),
      h("div", { class: "muted" }, t("worklist_sla_of", { sla: duration(item.sla_minutes * 60000) })),
    ),
    h("td", {}, item.assignee_name ?? h("span", { class: "muted" }, t("worklist_nobody"))),
    h("td", {}, h("div", { class: "actions" }, item.assignable ? takeButton(item, key, mine, vars) : null)),
  );
}

function takeButton(item, key, mine, vars) {
  return h(
    "button",
    {
      type: "button",
      class: mine ? "secondary" : "primary",
      "data-focus-key": key,
      "data-action": mine ? "release" : "take",
      "aria-label": t(mine ? "worklist_release_label" : "worklist_take_label", vars),
      onclick: () => act(item, mine ? null : "me"),
    },
    t(mine ? "worklist_release" : "worklist_take"),
  );
}

function render() {
  const items = shown();
  preserveFocus(() => syncRows($("#worklist-body"), items, row));
  $("#worklist-empty").hidden = items.length > 0;
  for (const counter of $$("[data-count]")) {
    counter.textContent = String(state.items.filter((i) => i.type === counter.dataset.count).length);
  }
}

async function load({ say = false } = {}) {
  try {
    const list = await api("/api/v1/worklist", { query: { team: currentTeam(), lang } });
    state.items = list.items;
    $("#worklist-error").textContent = "";
    $("#worklist-refreshed").textContent = t("worklist_refreshed", { time: formatTime(list.generated_at) });
    $("#worklist-settings").textContent = t("worklist_settings", { inactive: list.inactive_days, review: list.plan_review_days });
    render();
    if (say) announce(t("worklist_loaded", { n: shown().length }));
  } catch (error) {
    $("#worklist-error").textContent = t("error_generic", { detail: error.message });
  }
}

async function act(item, assignee) {
  try {
    if (ALARM_TYPES.has(item.type)) {
      await api(`/api/v1/alarms/${item.key}/assign`, { method: "POST", body: { assignee } });
    } else {
      await api("/api/v1/worklist/assign", { method: "POST", body: { type: item.type, key: item.key, assignee } });
    }
    await load();
    announce(t(assignee ? "worklist_taken" : "worklist_released", { title: `${item.patient_name}, ${item.title}` }));
  } catch (error) {
    $("#worklist-error").textContent = t("error_generic", { detail: error.message });
  }
}

async function start() {
  state.user = await me;
  for (const box of [...$$("#type-filter input"), $("#worklist-mine")]) {
    box.addEventListener("change", () => {
      render();
      announce(t("worklist_loaded", { n: shown().length }));
    });
  }
  onTeamChange(() => load({ say: true }));
  await load({ say: true });
  openStream(`/api/v1/alarms/stream?${new URLSearchParams({ lang })}`, {
    onEvent: loadSoon,
    onOpen: loadSoon,
    onState: () => {},
  });
  setInterval(() => preserveFocus(render), 15_000);
  setInterval(() => load(), 60_000);
}

start();
