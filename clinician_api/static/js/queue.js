// The alarm queue: loaded from the API, kept live by the SSE stream, worked with the nurse's actions.
import { ApiError, api } from "./api.js";
import { $, $$, announce, badge, h, preserveFocus, syncRows } from "./dom.js";
import { formatAge, formatTime, formats, kindName, lang, severityRank, t, withUnit } from "./i18n.js";
import { currentTeam, me, onTeamChange } from "./shell.js";
import { openStream } from "./sse.js";
import { beep, soundBlocked, unlockSound } from "./sound.js";

let alarms = new Map();
const seen = new Set();
const selected = new Set();
const bannerAlarms = [];
let user = null;
let teamNames = new Map();
let loadedOnce = false;
let loading = null;
let loadAgain = false;
let groupsShown = new Map();

const prefs = {
  sound: localStorage.getItem("varde.pref.sound") !== "off",
  banner: localStorage.getItem("varde.pref.banner") !== "off",
  perPatient: localStorage.getItem("varde.pref.perPatient") === "on",
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
  return severityRank[a.severity] - severityRank[b.severity] || new Date(a.opened_at) - new Date(b.opened_at);
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
  const vars = { patient: alarm.patient_name, text: alarm.headline || alarm.explanation, severity: t(`severity_${alarm.severity}`) };
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
  $("#red-banner-text").textContent = `${alarm.patient_name}: ${alarm.headline || alarm.explanation}`;
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
    ["perPatient", "#toggle-per-patient"],
  ]) {
    const button = $(id);
    button.setAttribute("aria-pressed", String(prefs[name]));
    button.addEventListener("click", () => {
      prefs[name] = !prefs[name];
      localStorage.setItem(`varde.pref.${name}`, prefs[name] ? "on" : "off");
      button.setAttribute("aria-pressed", String(prefs[name]));
      if (name === "banner" && !prefs.banner) hideBanner();
      if (name === "sound" && prefs.sound) unlockSound();
      if (name === "perPatient") render();
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

// --- grouping -------------------------------------------------------------------------------------------------

// One row per event for the nurse: the alarms of one measurement act (a cuff inflation's systolic, diastolic and
// mean) together, or — with "per patient" — all of a patient's alarms. Each row acts on all of its alarms at once.
const PANEL_KINDS = new Set(["bp_systolic", "bp_diastolic", "bp_mean"]);

// A blood-pressure panel's components are one event even when their worst readings came from different
// inflations; an alarm of another rule decided by a reading of the same act (NEWS2 on the systolic) joins it.
function groupKeys(visible) {
  const keys = new Map();
  const actKey = new Map();
  for (const alarm of visible) {
    if (prefs.perPatient) keys.set(alarm.id, `patient-${alarm.patient_id}`);
    else if (PANEL_KINDS.has(alarm.kind)) {
      keys.set(alarm.id, `bp-${alarm.patient_id}`);
      if (alarm.act_group) actKey.set(alarm.act_group, `bp-${alarm.patient_id}`);
    }
  }
  for (const alarm of visible) {
    if (keys.has(alarm.id)) continue;
    const key = alarm.act_group ? (actKey.get(alarm.act_group) ?? `act-${alarm.act_group}`) : `alarm-${alarm.id}`;
    keys.set(alarm.id, key);
  }
  return keys;
}

function groupsOf(visible) {
  const keys = groupKeys(visible);
  const byKey = new Map();
  for (const alarm of visible) {
    const key = keys.get(alarm.id);
    if (!byKey.has(key)) byKey.set(key, []);
    byKey.get(key).push(alarm);
  }
  return [...byKey.values()].map((members) => {
    members.sort(compare);
    return { lead: members[0], members };
  });
}

function groupIds(group) {
  return group.members.map((alarm) => alarm.id);
}

// --- rendering -----------------------------------------------------------------------------------------------

function actionButton(group, action, label) {
  const { lead, members } = group;
  return h(
    "button",
    {
      type: "button",
      class: action === "acknowledge" ? "primary small" : "secondary small",
      "data-action": action,
      "data-focus-key": `${lead.id}:${action}`,
      "aria-label": `${label}: ${lead.patient_name}${members.length > 1 ? ` (${t("alarms_n", { n: members.length })})` : ""}`,
      onclick: () => act(group, action),
    },
    label,
  );
}

function measuredLine(alarm) {
  if (!alarm.headline_measured_at) return null;
  const parts = [t("measured_at", { time: formatTime(alarm.headline_measured_at) })];
  if (alarm.headline_received_at) parts.push(t("received_at", { time: formatTime(alarm.headline_received_at) }));
  return h("div", { class: "muted when" }, parts.join(" · "));
}

function facts(alarm) {
  const list = [
    alarm.kind && alarm.severity !== "missed" && alarm.last_value !== null && alarm.last_value !== alarm.headline_value
      ? t("latest_value", { value: `${kindName(alarm.kind)} ${withUnit(alarm.kind, alarm.last_value)}` })
      : null,
    alarm.count > 1 ? t("readings_count", { n: alarm.count }) : null,
  ].filter(Boolean);
  return list.length > 0 ? h("div", { class: "muted" }, list.join(" · ")) : null;
}

function tags(members) {
  const escalated = members.find((alarm) => alarm.escalated);
  const notified = members.flatMap((alarm) => alarm.notified || []);
  const seen = new Set();
  const unique = notified.filter((n) => !seen.has(`${n.label}/${n.channel}`) && seen.add(`${n.label}/${n.channel}`));
  return [
    escalated &&
      h(
        "span",
        { class: "tag tag-escalated" },
        h("span", { class: "glyph-escalated", "aria-hidden": "true" }),
        t("escalated"),
        escalated.escalated_at ? ` ${formats.timeOnly.format(new Date(escalated.escalated_at))}` : "",
      ),
    ...unique.map((n) =>
      h(
        "span",
        { class: `tag tag-notified notified-${n.state}` },
        t(`notified_${n.state}`, { who: n.label, channel: t(`channel_${n.channel}`) }),
      ),
    ),
    members.some((alarm) => alarm.back_in_range) &&
      h("span", { class: "tag" }, h("span", { "aria-hidden": "true" }, "✓ "), t("back_in_range")),
  ];
}

function lastNote(members) {
  const noted = members.filter((alarm) => alarm.last_note).sort((a, b) => new Date(b.last_note_at) - new Date(a.last_note_at));
  if (noted.length === 0) return null;
  const note = noted[0];
  return h(
    "p",
    { class: "note" },
    h("span", { class: "note-label" }, t("note_label")),
    " ",
    note.last_note,
    h("span", { class: "muted" }, ` — ${note.last_note_by || ""} ${formatTime(note.last_note_at)}`),
  );
}

function row(group) {
  const { lead, members } = group;
  const mine = members.every((alarm) => alarm.assignee_id && alarm.assignee_id === user?.id);
  const selectable = members.every((alarm) => alarm.severity === "yellow" && alarm.state === "open");
  const anyOpen = members.some((alarm) => alarm.state === "open");
  const anyEscalated = members.some((alarm) => alarm.escalated);
  const others = members.slice(1);
  return h(
    "tr",
    {
      id: `alarm-${lead.id}`,
      class: `sev-${lead.severity} state-${lead.state}`,
      "data-severity": lead.severity,
      "data-alarm-ids": groupIds(group).join(" "),
    },
    h(
      "td",
      { class: "select" },
      selectable &&
        h("input", {
          type: "checkbox",
          "data-focus-key": `${lead.id}:select`,
          checked: members.every((alarm) => selected.has(alarm.id)),
          "aria-label": t("select_alarm", { patient: lead.patient_name }),
          onchange: (event) => {
            for (const alarm of members) {
              if (event.target.checked) selected.add(alarm.id);
              else selected.delete(alarm.id);
            }
            updateBulk();
          },
        }),
    ),
    h("td", {}, badge(lead.severity, t(`severity_${lead.severity}`))),
    h(
      "th",
      { scope: "row" },
      h("a", { href: `/dashboard/patients/${lead.patient_id}`, "data-focus-key": `${lead.id}:patient` }, lead.patient_name),
      h("div", { class: "muted" }, teamNames.get(lead.team_id) ?? ""),
    ),
    h(
      "td",
      { class: "alarm-cell" },
      h("div", { class: "explanation" }, lead.headline || lead.explanation),
      measuredLine(lead),
      facts(lead),
      others.length > 0 &&
        h(
          "ul",
          { class: "also", "aria-label": t("also_in_event") },
          others.map((alarm) =>
            h(
              "li",
              {},
              badge(alarm.severity, t(`severity_${alarm.severity}`)),
              " ",
              alarm.headline || alarm.explanation,
              alarm.headline_measured_at && !lead.act_group
                ? h("span", { class: "muted" }, ` (${formatTime(alarm.headline_measured_at)})`)
                : null,
            ),
          ),
        ),
      lastNote(members),
      tags(members),
    ),
    h(
      "td",
      {},
      h("time", { datetime: lead.opened_at, title: formatTime(lead.opened_at) }, formatAge(lead.opened_at)),
      h("div", { class: "muted" }, formatTime(lead.opened_at)),
    ),
    h(
      "td",
      {},
      h("div", { class: "state" }, t(`state_${lead.state}`)),
      h("div", { class: "muted assignee" }, lead.assignee_name ? t("assigned_to", { name: lead.assignee_name }) : t("unassigned")),
    ),
    h(
      "td",
      {},
      h(
        "div",
        { class: "actions" },
        anyOpen && actionButton(group, "acknowledge", members.length > 1 ? t("action_ack_all", { n: members.length }) : t("action_ack")),
        !mine && actionButton(group, "assign", t("action_assign_me")),
        actionButton(group, "note", t("action_note")),
        !anyEscalated && actionButton(group, "escalate", t("action_escalate")),
        actionButton(group, "resolve", members.length > 1 ? t("action_resolve_all", { n: members.length }) : t("action_resolve")),
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
  const groups = groupsOf(visible);
  groupsShown = new Map(groups.map((group) => [group.lead.id, group]));
  preserveFocus(() => syncRows($("#queue-body"), groups, row));
  $("#queue-empty").hidden = visible.length > 0;
  $("#queue").hidden = visible.length === 0;
  updateBulk();
  restoreDraftDialog();
}

function updateBulk() {
  $("#bulk-count").textContent = String(selected.size);
  $("#bulk-ack").disabled = selected.size === 0;
}

// --- attention: silent gateways and device clocks -----------------------------------------------------------

async function loadAttention() {
  try {
    const answer = await api("/api/v1/attention", { query: { team: currentTeam() } });
    const list = $("#attention-list");
    const items = answer.items.map((item) =>
      h(
        "li",
        { class: `attention attention-${item.kind}` },
        h("span", { class: "attention-glyph", "aria-hidden": "true" }),
        h("a", { href: `/dashboard/patients/${item.patient_id}` }, item.patient_name),
        ": ",
        item.kind === "silent_gateway"
          ? item.hours === null
            ? t("attention_never")
            : t(item.hours === 1 ? "attention_silent_one" : "attention_silent", { n: item.hours, time: formatTime(item.since) })
          : t(item.count === 1 ? "attention_clock_one" : "attention_clock", { n: item.count }),
      ),
    );
    list.replaceChildren(...items);
    $("#attention").hidden = items.length === 0;
  } catch (error) {
    $("#queue-error").textContent = t("error_generic", { detail: error.message });
  }
}

// --- actions -------------------------------------------------------------------------------------------------

async function act(group, action) {
  if (action === "note" || action === "resolve") {
    openDialog(group, action);
    return;
  }
  const { lead, members } = group;
  try {
    if (action === "assign") {
      for (const alarm of members) {
        upsert(await api(`/api/v1/alarms/${alarm.id}/assign`, { method: "POST", body: { assignee: "me" }, query: { lang } }));
      }
    } else {
      const result = await api(`/api/v1/alarms/group/${action}`, {
        method: "POST",
        body: { alarm_ids: groupIds(group) },
        query: { lang },
      });
      for (const alarm of result.items) upsert(alarm);
    }
    render();
    const done = { acknowledge: "done_ack", assign: "done_assign", escalate: "done_escalate" }[action];
    announce(t(done, { patient: lead.patient_name }));
    if (action === "escalate") setTimeout(load, 3000);
  } catch (error) {
    showActionError(error);
  }
}

function showActionError(error) {
  const message = error instanceof ApiError && error.status === 409 ? t("error_conflict") : error.message;
  $("#queue-error").textContent = t("error_generic", { detail: message });
  load();
}

// Drafts: a half-typed note or resolution survives a sign-in in between (this tab's sessionStorage; only the
// alarm's id and the text, no patient name), and is gone once saved or after sign-out.
const DRAFT_OPEN = "varde-draft.open";
const draftKey = (alarmId, action) => `varde-draft.${alarmId}.${action}`;
let dialogState = null;

function openDialog(group, action) {
  const { lead } = group;
  const dialog = $("#action-dialog");
  dialogState = { group, action, opener: document.activeElement };
  $("#action-dialog-title").textContent = t(action === "note" ? "dialog_note_title" : "dialog_resolve_title");
  $("#action-dialog-context").textContent =
    `${lead.patient_name}: ${lead.headline || lead.explanation}` +
    (group.members.length > 1 ? ` (${t("alarms_n", { n: group.members.length })})` : "");
  $("#action-text-label").textContent = t(action === "note" ? "dialog_note_label" : "dialog_resolve_label");
  $("#action-submit").textContent = t(action === "note" ? "action_note_save" : "action_resolve");
  $("#action-text").value = sessionStorage.getItem(draftKey(lead.id, action)) || "";
  $("#action-text").removeAttribute("aria-invalid");
  $("#action-error").textContent = "";
  sessionStorage.setItem(DRAFT_OPEN, JSON.stringify({ alarm: lead.id, action }));
  if (!dialog.open) dialog.showModal();
  $("#action-text").focus();
}

function restoreDraftDialog() {
  if (dialogState || !sessionStorage.getItem(DRAFT_OPEN)) return;
  let open;
  try {
    open = JSON.parse(sessionStorage.getItem(DRAFT_OPEN));
  } catch {
    sessionStorage.removeItem(DRAFT_OPEN);
    return;
  }
  const group = [...groupsShown.values()].find((g) => g.members.some((alarm) => alarm.id === open.alarm));
  if (!group) return;
  const text = sessionStorage.getItem(draftKey(open.alarm, open.action));
  if (group.lead.id !== open.alarm && text !== null) sessionStorage.setItem(draftKey(group.lead.id, open.action), text);
  openDialog(group, open.action);
  $("#action-draft-restored").hidden = !text;
}

function closeDialog({ discard = true } = {}) {
  const opener = dialogState?.opener;
  if (discard && dialogState) sessionStorage.removeItem(draftKey(dialogState.group.lead.id, dialogState.action));
  sessionStorage.removeItem(DRAFT_OPEN);
  $("#action-dialog").close();
  $("#action-draft-restored").hidden = true;
  dialogState = null;
  if (opener?.isConnected) opener.focus();
  else $("#main").focus();
}

function setupDialog() {
  $("#action-cancel").addEventListener("click", () => closeDialog());
  $("#action-dialog").addEventListener("cancel", (event) => {
    event.preventDefault();
    closeDialog();
  });
  $("#action-text").addEventListener("input", () => {
    if (dialogState) sessionStorage.setItem(draftKey(dialogState.group.lead.id, dialogState.action), $("#action-text").value);
  });
  $("#action-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!dialogState) return;
    const { group, action } = dialogState;
    const { lead, members } = group;
    const text = $("#action-text").value.trim();
    const minimum = action === "resolve" ? 3 : 1;
    const error = $("#action-error");
    if (text.length < minimum) {
      error.textContent = t(action === "resolve" ? "error_resolution_short" : "error_note_empty");
      $("#action-text").setAttribute("aria-invalid", "true");
      $("#action-text").focus();
      return;
    }
    try {
      if (members.length === 1) {
        const path = action === "note" ? "notes" : "resolve";
        const body = action === "note" ? { text } : { resolution: text };
        upsert(await api(`/api/v1/alarms/${lead.id}/${path}`, { method: "POST", body, query: { lang } }));
      } else {
        const result = await api(`/api/v1/alarms/group/${action}`, {
          method: "POST",
          body: { alarm_ids: groupIds(group), text },
          query: { lang },
        });
        for (const alarm of result.items) upsert(alarm);
      }
      closeDialog();
      render();
      announce(t(action === "note" ? "done_note" : "done_resolve", { patient: lead.patient_name }));
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
    loadAttention();
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
  loadAttention();
  setInterval(loadAttention, 300000);
}

start();
