// The alarm queue: loaded from the API, kept live by the SSE stream, worked with the nurse's actions.
import { ApiError, api } from "./api.js";
import { $, $$, announce, badge, h, preserveFocus, syncRows } from "./dom.js";
import { formatAge, formatTime, kindName, lang, t, withUnit } from "./i18n.js";
import { currentTeam, me, onTeamChange } from "./shell.js";
import { openStream } from "./sse.js";
import { beep, soundBlocked, unlockSound } from "./sound.js";

const RANK = { red: 0, yellow: 1, missed: 2, needs_review: 3 };
let alarms = new Map();
const seen = new Set();
const selected = new Set();
const bannerAlarms = [];
let user = null;
let teamNames = new Map();
let loadedOnce = false;
let loading = null;
let loadAgain = false;

const prefs = {
  sound: localStorage.getItem("varde.pref.sound") !== "off",
  banner: localStorage.getItem("varde.pref.banner") !== "off",
};

function filters() {
  return {
    severities: new Set($$('input[name="severity"]:checked').map((box) => box.value)),
    team: currentTeam(),
    mine: $("#only-mine").checked,
  };
}

function inTeam(alarm, team = currentTeam()) {
  return !team || alarm.team_id === team;
}

function shown(alarm, f) {
  return (
    alarm.state !== "resolved" &&
    f.severities.has(alarm.severity) &&
    inTeam(alarm, f.team) &&
    (!f.mine || alarm.assignee_id === user?.id)
  );
}

function newer(a, b) {
  return new Date(a.updated_at).getTime() >= new Date(b.updated_at).getTime();
}

function compare(a, b) {
  return RANK[a.severity] - RANK[b.severity] || new Date(a.opened_at) - new Date(b.opened_at);
}

// --- loading and the stream ----------------------------------------------------------------------------------

async function load() {
  if (loading) {
    loadAgain = true;
    return loading;
  }
  loading = (async () => {
    try {
      do {
        loadAgain = false;
        const page = await api("/api/v1/alarms", { query: { lang, limit: 500, team: currentTeam() } });
        const fresh = new Map(page.items.map((alarm) => [alarm.id, alarm]));
        for (const [id, known] of alarms) {
          const loaded = fresh.get(id);
          if (loaded && newer(known, loaded)) fresh.set(id, known);
        }
        alarms = fresh;
        for (const alarm of alarms.values()) {
          if (loadedOnce) alertIfNew(alarm);
          else seen.add(alarm.id);
        }
        loadedOnce = true;
        $("#queue-error").textContent = "";
        render();
      } while (loadAgain);
    } catch (error) {
      $("#queue-error").textContent = t("error_generic", { detail: error.message });
    } finally {
      loading = null;
    }
  })();
  return loading;
}

function upsert(alarm) {
  const known = alarms.get(alarm.id);
  if (known && !newer(alarm, known)) return;
  if (alarm.state === "resolved" || !inTeam(alarm)) {
    alarms.delete(alarm.id);
    selected.delete(alarm.id);
  } else {
    alarms.set(alarm.id, alarm);
  }
}

function onStreamEvent(event, data) {
  if (event === "resync") {
    load();
    return;
  }
  if (event !== "alarm") return;
  const alarm = JSON.parse(data);
  upsert(alarm);
  if (loadedOnce && inTeam(alarm)) alertIfNew(alarm);
  render();
}

function setStreamState(state) {
  const status = $("#stream-status");
  status.dataset.state = state;
  $(".text", status).textContent = t(state === "live" ? "stream_live" : "stream_reconnecting");
}

// --- alerts: banner, sound, live region ----------------------------------------------------------------------

function alertIfNew(alarm) {
  if (seen.has(alarm.id)) return;
  seen.add(alarm.id);
  if (alarm.state !== "open") return;
  const vars = { patient: alarm.patient_name, text: alarm.explanation, severity: t(`severity_${alarm.severity}`) };
  if (alarm.severity === "red") {
    announce(t("announce_red", vars), true);
    showBanner(alarm);
    if (prefs.sound) {
      beep();
      $("#sound-blocked").hidden = !soundBlocked();
    }
  } else {
    announce(t("announce_new", vars));
  }
}

function showBanner(alarm) {
  if (!prefs.banner) return;
  bannerAlarms.push(alarm);
  const banner = $("#red-banner");
  $("#red-banner-title").textContent =
    bannerAlarms.length === 1 ? t("banner_one") : t("banner_many", { n: bannerAlarms.length });
  $("#red-banner-text").textContent = `${alarm.patient_name}: ${alarm.explanation}`;
  $("#red-banner-link").href = `/dashboard/patients/${alarm.patient_id}`;
  banner.hidden = false;
}

function hideBanner() {
  bannerAlarms.length = 0;
  $("#red-banner").hidden = true;
}

function setupPrefs() {
  for (const [name, id] of [
    ["sound", "#toggle-sound"],
    ["banner", "#toggle-banner"],
  ]) {
    const button = $(id);
    button.setAttribute("aria-pressed", String(prefs[name]));
    button.addEventListener("click", () => {
      prefs[name] = !prefs[name];
      localStorage.setItem(`varde.pref.${name}`, prefs[name] ? "on" : "off");
      button.setAttribute("aria-pressed", String(prefs[name]));
      if (name === "banner" && !prefs.banner) hideBanner();
      if (name === "sound" && prefs.sound) unlockSound();
      announce(t(prefs[name] ? `${name}_on` : `${name}_off`));
    });
  }
  $("#red-banner-close").addEventListener("click", () => {
    hideBanner();
    $("#queue-body").focus();
  });
  // Browsers start audio only after the user touched the page; the first click or key unlocks it.
  const unlock = () => {
    unlockSound();
    $("#sound-blocked").hidden = true;
  };
  document.addEventListener("pointerdown", unlock, { once: true });
  document.addEventListener("keydown", unlock, { once: true });
}

// --- rendering -----------------------------------------------------------------------------------------------

function actionButton(alarm, action, label) {
  return h(
    "button",
    {
      type: "button",
      class: action === "acknowledge" ? "primary small" : "secondary small",
      "data-action": action,
      "data-focus-key": `${alarm.id}:${action}`,
      "aria-label": `${label}: ${alarm.patient_name}`,
      onclick: () => act(alarm.id, action),
    },
    label,
  );
}

function row(alarm) {
  const mine = alarm.assignee_id && alarm.assignee_id === user?.id;
  const selectable = alarm.severity === "yellow" && alarm.state === "open";
  const facts = [
    alarm.kind && alarm.severity !== "missed" && alarm.last_value !== null
      ? `${kindName(alarm.kind)}: ${withUnit(alarm.kind, alarm.last_value)}`
      : alarm.kind
        ? kindName(alarm.kind)
        : null,
    alarm.count > 1 ? t("readings_count", { n: alarm.count }) : null,
  ].filter(Boolean);
  const tags = [
    alarm.escalated && h("span", { class: "tag tag-escalated" }, h("span", { "aria-hidden": "true" }, "⏫ "), t("escalated")),
    alarm.back_in_range && h("span", { class: "tag" }, h("span", { "aria-hidden": "true" }, "✓ "), t("back_in_range")),
  ];
  return h(
    "tr",
    { id: `alarm-${alarm.id}`, class: `sev-${alarm.severity} state-${alarm.state}`, "data-severity": alarm.severity },
    h(
      "td",
      { class: "select" },
      selectable &&
        h("input", {
          type: "checkbox",
          "data-focus-key": `${alarm.id}:select`,
          checked: selected.has(alarm.id),
          "aria-label": t("select_alarm", { patient: alarm.patient_name }),
          onchange: (event) => {
            if (event.target.checked) selected.add(alarm.id);
            else selected.delete(alarm.id);
            updateBulk();
          },
        }),
    ),
    h("td", {}, badge(alarm.severity, t(`severity_${alarm.severity}`))),
    h(
      "th",
      { scope: "row" },
      h("a", { href: `/dashboard/patients/${alarm.patient_id}`, "data-focus-key": `${alarm.id}:patient` }, alarm.patient_name),
      h("div", { class: "muted" }, teamNames.get(alarm.team_id) ?? ""),
    ),
    h(
      "td",
      {},
      h("div", { class: "explanation" }, alarm.explanation),
      facts.length > 0 && h("div", { class: "muted" }, facts.join(" · ")),
      tags,
    ),
    h(
      "td",
      {},
      h("time", { datetime: alarm.opened_at, title: formatTime(alarm.opened_at) }, formatAge(alarm.opened_at)),
      h("div", { class: "muted" }, formatTime(alarm.opened_at)),
    ),
    h(
      "td",
      {},
      h("div", { class: "state" }, t(`state_${alarm.state}`)),
      h("div", { class: "muted assignee" }, alarm.assignee_name ? t("assigned_to", { name: alarm.assignee_name }) : t("unassigned")),
    ),
    h(
      "td",
      {},
      h(
        "div",
        { class: "actions" },
        alarm.state === "open" && actionButton(alarm, "acknowledge", t("action_ack")),
        !mine && actionButton(alarm, "assign", t("action_assign_me")),
        actionButton(alarm, "note", t("action_note")),
        actionButton(alarm, "resolve", t("action_resolve")),
      ),
    ),
  );
}

function render() {
  const f = filters();
  const visible = [...alarms.values()].filter((alarm) => shown(alarm, f)).sort(compare);
  for (const id of [...selected]) {
    const alarm = alarms.get(id);
    if (!alarm || alarm.state !== "open" || !shown(alarm, f)) selected.delete(id);
  }
  preserveFocus(() => syncRows($("#queue-body"), visible, row));
  $("#queue-empty").hidden = visible.length > 0;
  $("#queue").hidden = visible.length === 0;
  updateBulk();
}

function updateBulk() {
  $("#bulk-count").textContent = String(selected.size);
  $("#bulk-ack").disabled = selected.size === 0;
}

// --- actions -------------------------------------------------------------------------------------------------

async function act(alarmId, action) {
  const alarm = alarms.get(alarmId);
  if (!alarm) return;
  if (action === "note" || action === "resolve") {
    openDialog(alarm, action);
    return;
  }
  const body = action === "assign" ? { assignee: "me" } : undefined;
  try {
    const updated = await api(`/api/v1/alarms/${alarmId}/${action}`, { method: "POST", body, query: { lang } });
    upsert(updated);
    render();
    announce(t(action === "acknowledge" ? "done_ack" : "done_assign", { patient: alarm.patient_name }));
  } catch (error) {
    showActionError(error);
  }
}

function showActionError(error) {
  const message = error instanceof ApiError && error.status === 409 ? t("error_conflict") : error.message;
  $("#queue-error").textContent = t("error_generic", { detail: message });
  load();
}

let dialogState = null;

function openDialog(alarm, action) {
  const dialog = $("#action-dialog");
  dialogState = { alarm, action, opener: document.activeElement };
  $("#action-dialog-title").textContent = t(action === "note" ? "dialog_note_title" : "dialog_resolve_title");
  $("#action-dialog-context").textContent = `${alarm.patient_name}: ${alarm.explanation}`;
  $("#action-text-label").textContent = t(action === "note" ? "dialog_note_label" : "dialog_resolve_label");
  $("#action-submit").textContent = t(action === "note" ? "action_note_save" : "action_resolve");
  $("#action-text").value = "";
  $("#action-text").removeAttribute("aria-invalid");
  $("#action-error").textContent = "";
  dialog.showModal();
  $("#action-text").focus();
}

function closeDialog() {
  const opener = dialogState?.opener;
  $("#action-dialog").close();
  dialogState = null;
  if (opener?.isConnected) opener.focus();
  else $("#main").focus();
}

function setupDialog() {
  $("#action-cancel").addEventListener("click", closeDialog);
  $("#action-dialog").addEventListener("cancel", (event) => {
    event.preventDefault();
    closeDialog();
  });
  $("#action-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!dialogState) return;
    const { alarm, action } = dialogState;
    const text = $("#action-text").value.trim();
    const minimum = action === "resolve" ? 3 : 1;
    const error = $("#action-error");
    if (text.length < minimum) {
      error.textContent = t(action === "resolve" ? "error_resolution_short" : "error_note_empty");
      $("#action-text").setAttribute("aria-invalid", "true");
      $("#action-text").focus();
      return;
    }
    const path = action === "note" ? "notes" : "resolve";
    const body = action === "note" ? { text } : { resolution: text };
    try {
      const updated = await api(`/api/v1/alarms/${alarm.id}/${path}`, { method: "POST", body, query: { lang } });
      upsert(updated);
      closeDialog();
      render();
      announce(t(action === "note" ? "done_note" : "done_resolve", { patient: alarm.patient_name }));
    } catch (failure) {
      const field = failure instanceof ApiError ? failure.fieldErrors[0] : null;
      error.textContent = field ? field.message : t("error_generic", { detail: failure.message });
      $("#action-text").setAttribute("aria-invalid", "true");
    }
  });
}

function setupBulk() {
  $("#bulk-ack").addEventListener("click", async () => {
    const ids = [...selected];
    const message = $("#bulk-message");
    try {
      const result = await api("/api/v1/alarms/bulk-acknowledge", {
        method: "POST",
        body: { alarm_ids: ids, send_receipt: $("#bulk-receipt").checked },
      });
      selected.clear();
      const sent = result.receipts.filter((receipt) => receipt.published).length;
      message.textContent = t("done_bulk", { n: result.acknowledged.length, receipts: sent });
      await load();
    } catch (error) {
      const red = error instanceof ApiError && error.status === 409;
      message.textContent = red ? t("error_bulk_red") : t("error_generic", { detail: error.message });
    }
  });
}

// --- start ---------------------------------------------------------------------------------------------------

async function start() {
  setupPrefs();
  setupDialog();
  setupBulk();
  for (const box of $$('input[name="severity"], #only-mine')) box.addEventListener("change", render);
  onTeamChange(() => {
    hideBanner();
    load();
  });
  user = await me;
  teamNames = new Map(user.teams.map((team) => [team.id, team.name]));
  $("#queue-body").setAttribute("tabindex", "-1");
  openStream(`/api/v1/alarms/stream?lang=${lang}&heartbeat=15`, {
    onEvent: onStreamEvent,
    onOpen: load,
    onState: setStreamState,
  });
  setInterval(render, 30000);
}

start();
