// Record delivery (journalføring): outbox entries waiting for or refused by the patient's record system, with the
// record system's own reason and a retry, and the ones delivered lately. Everything comes from the journal API,
// which decides who sees which entry (duty of care) and audits every look and every retry.
import { ApiError, api } from "./api.js";
import { $, announce, h, preserveFocus, syncRows } from "./dom.js";
import { formatAge, formats, formatTime, t } from "./i18n.js";
import { currentTeam, me, onTeamChange } from "./shell.js";

const ENTRIES = "/api/v1/journal/entries";
const OPEN_LIMIT = 200;
const DELIVERED_LIMIT = 20;
// Only waiting entries change by themselves: look again when the next one is due, within these bounds.
const POLL_MIN_MS = 2000;
const POLL_MAX_MS = 60000;
const STATE_BADGE = {
  pending: ["badge-needs_review", "…"],
  failed: ["badge-red", "✕"],
  delivered: ["badge-green", "✓"],
};

let open = [];
let delivered = [];
let loadSeq = 0;
let loading = null;
let loadAgain = false;
let timer = null;
let denied = false;
const retrying = new Set();
// Entries retried from this page, with the load after which their outcome counts: announced when it is known.
const watched = new Map();

function inTeam(entry, team = currentTeam()) {
  return !team || entry.patients.some((p) => p.team_id === team);
}

function patientNames(entry) {
  const named = new Map(entry.patients.map((p) => [p.id, p.display_name]));
  return entry.patient_ids.map((id) => named.get(id) ?? t("journal_patient_id", { id: id.slice(0, 8) }));
}

function patientCell(entry) {
  const named = new Map(entry.patients.map((p) => [p.id, p.display_name]));
  const parts = entry.patient_ids.map((id, i) => [
    i > 0 ? ", " : null,
    named.has(id)
      ? h("a", { href: `/dashboard/patients/${id}`, "data-focus-key": `${entry.id}:${id}` }, named.get(id))
      : h("span", { class: "muted" }, t("journal_patient_id", { id: id.slice(0, 8) })),
  ]);
  return h("th", { scope: "row" }, parts);
}

function stateBadge(state) {
  const [cls, icon] = STATE_BADGE[state];
  return h(
    "span",
    { class: `badge ${cls}` },
    h("span", { class: "icon", "aria-hidden": "true" }, icon),
    " ",
    t(`journal_state_${state}`),
  );
}

function contentCell(entry) {
  return h(
    "td",
    {},
    t(`journal_kind_${entry.kind}`),
    h("div", { class: "muted" }, t("journal_to_system", { system: entry.endpoint_name })),
  );
}

function timeText(iso) {
  return h("time", { datetime: iso, title: formatTime(iso) }, formatTime(iso));
}

function nextAttemptCell(entry) {
  let next;
  if (entry.state === "failed") next = h("span", {}, t("journal_no_next"));
  else if (new Date(entry.next_attempt_at).getTime() <= Date.now()) next = h("span", {}, t("journal_due_now"));
  else next = timeText(entry.next_attempt_at);
  const last = entry.last_attempt_at
    ? h("div", { class: "muted" }, t("journal_last_attempt", { age: formatAge(entry.last_attempt_at) }))
    : null;
  return h("td", {}, next, last);
}

function reasonCell(entry) {
  if (entry.last_error) return h("td", { class: "reason" }, entry.last_error);
  return h("td", { class: "reason muted" }, entry.attempts === 0 ? t("journal_not_sent_yet") : "–");
}

function openRow(entry) {
  const what = `${patientNames(entry).join(", ")}, ${t(`journal_kind_${entry.kind}`)}`;
  return h(
    "tr",
    { id: `journal-${entry.id}`, "data-state": entry.state, class: `journal-${entry.state}` },
    h("td", {}, stateBadge(entry.state)),
    patientCell(entry),
    contentCell(entry),
    h("td", { class: "number" }, String(entry.attempts)),
    nextAttemptCell(entry),
    reasonCell(entry),
    h(
      "td",
      {},
      h(
        "button",
        {
          type: "button",
          class: "secondary small",
          "data-focus-key": `${entry.id}:retry`,
          "aria-label": t("journal_retry_for", { what }),
          onclick: () => retry(entry),
        },
        t("journal_retry"),
      ),
    ),
  );
}

function deliveredRow(entry) {
  return h(
    "tr",
    { id: `journal-${entry.id}`, "data-state": entry.state },
    h("td", {}, stateBadge(entry.state)),
    patientCell(entry),
    contentCell(entry),
    h("td", { class: "number" }, String(entry.attempts)),
    h("td", {}, entry.delivered_at ? timeText(entry.delivered_at) : "–"),
    h("td", { class: "reason" }, entry.location ? h("code", {}, entry.location) : "–"),
  );
}

function render() {
  const shownOpen = open.filter((entry) => inTeam(entry));
  const shownDelivered = delivered.filter((entry) => inTeam(entry));
  preserveFocus(() => {
    syncRows($("#journal-open-body"), shownOpen, openRow);
    syncRows($("#journal-delivered-body"), shownDelivered, deliveredRow);
  });
  $("#journal-open").hidden = shownOpen.length === 0;
  $("#journal-open-empty").hidden = shownOpen.length > 0 || denied;
  $("#journal-delivered").hidden = shownDelivered.length === 0;
  $("#journal-delivered-empty").hidden = shownDelivered.length > 0 || denied;
}

// --- loading -------------------------------------------------------------------------------------------------

async function load() {
  if (loading) {
    loadAgain = true;
    return loading;
  }
  loading = (async () => {
    try {
      do {
        loadAgain = false;
        const seq = ++loadSeq;
        const [openPage, deliveredPage] = await Promise.all([
          api(ENTRIES, { query: { state: ["pending", "failed"], limit: OPEN_LIMIT } }),
          api(ENTRIES, { query: { state: "delivered", limit: DELIVERED_LIMIT } }),
        ]);
        open = openPage.items;
        delivered = deliveredPage.items;
        const more = $("#journal-open-more");
        more.hidden = !openPage.next;
        more.textContent = openPage.next ? t("journal_more", { n: OPEN_LIMIT }) : "";
        $("#journal-error").textContent = "";
        $("#journal-updated").textContent = t("journal_updated", { time: formats.timeOnly.format(new Date()) });
        render();
        announceOutcomes(seq);
      } while (loadAgain);
    } catch (error) {
      denied = error instanceof ApiError && error.status === 403;
      $("#journal-error").textContent = denied ? t("journal_no_access") : t("error_generic", { detail: error.message });
      render();
    } finally {
      loading = null;
      schedule();
    }
  })();
  return loading;
}

function announceOutcomes(seq) {
  for (const [id, after] of watched) {
    if (seq <= after) continue;
    const entry = delivered.find((e) => e.id === id) ?? open.find((e) => e.id === id);
    if (!entry || entry.state === "pending") continue;
    watched.delete(id);
    const patient = patientNames(entry).join(", ");
    announce(t(entry.state === "delivered" ? "journal_done_delivered" : "journal_done_failed", { patient }));
  }
}

function schedule() {
  clearTimeout(timer);
  timer = null;
  if (denied || document.hidden) return;
  const due = open.filter((e) => e.state === "pending").map((e) => new Date(e.next_attempt_at).getTime());
  if (watched.size === 0 && due.length === 0) return;
  const wait = watched.size > 0 ? POLL_MIN_MS : Math.min(...due) - Date.now() + 1000;
  timer = setTimeout(load, Math.min(POLL_MAX_MS, Math.max(POLL_MIN_MS, wait)));
}

async function retry(entry) {
  if (retrying.has(entry.id)) return;
  retrying.add(entry.id);
  const patient = patientNames(entry).join(", ");
  try {
    const updated = await api(`${ENTRIES}/${entry.id}/retry`, { method: "POST" });
    watched.set(entry.id, loadSeq);
    open = open.map((e) => (e.id === updated.id ? updated : e));
    render();
    announce(t("journal_retried", { patient }));
  } catch (error) {
    const gone = error instanceof ApiError && error.status === 409;
    $("#journal-error").textContent = gone ? t("journal_already_delivered") : t("error_generic", { detail: error.message });
  } finally {
    retrying.delete(entry.id);
  }
  load();
}

// --- start ---------------------------------------------------------------------------------------------------

$("#journal-refresh").addEventListener("click", load);
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) load();
});
onTeamChange(render);
me.then(load);
