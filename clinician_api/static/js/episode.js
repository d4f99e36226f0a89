// The patient page's episode section: the current episode of follow-up and its history; enrol and discharge;
// propose a hand-over to another team (the note prefilled from the episode and the open alarms); the receiving
// team's accept or decline, the sending team's withdraw. The server decides who may do what: the buttons shown
// follow `access` (team, consultative, handover) of GET /episodes.
import { api, requireSession } from "./api.js";
import { $, announce, h, replaceChildren } from "./dom.js";
import { formatTime, maybe, patientId, t } from "./i18n.js";

const base = `/api/v1/patients/${patientId}`;
let state = null;

function pendingOf(data) {
  return data.handovers.find((x) => x.state === "proposed" && x.episode_id === data.current?.id) ?? null;
}

function renderSummary(data) {
  const current = data.current;
  $("#episode-summary").textContent = current
    ? t("episode_current", {
        team: current.team_name,
        org: current.organisation_name ? ` (${current.organisation_name})` : "",
        time: formatTime(current.started_at),
        reason: current.reason,
      })
    : t("episode_none");
  replaceChildren(
    $("#episode-details"),
    current?.conditions.length ? h("span", {}, t("episode_conditions", { list: current.conditions.map((c) => maybe(`protocol_${c}`, c)).join(", ") })) : null,
    current?.plan ? h("span", {}, " ", t("episode_plan", { text: current.plan })) : null,
  );
  const access = $("#episode-access");
  access.hidden = data.access === "team" || data.access === "emergency";
  access.textContent = access.hidden ? "" : t(`episode_access_${data.access}`);
}

function renderPending(data) {
  const pending = pendingOf(data);
  $("#handover-pending").hidden = !pending;
  if (!pending) return;
  $("#handover-pending-title").textContent = t("handover_pending", {
    from: pending.from_team_name,
    to: pending.to_team_name,
    time: formatTime(pending.proposed_at),
  });
  const parts = [
    ["handover_situation", pending.situation],
    ["handover_plan", pending.plan],
    ["handover_open_alarms", pending.open_alarms],
    ["handover_watch", pending.watch],
  ];
  replaceChildren(
    $("#handover-note"),
    parts.filter(([, text]) => text).map(([key, text]) => [h("dt", {}, t(key)), h("dd", { class: "message-body" }, text)]),
    pending.consult_days ? [h("dt", {}, t("handover_consult_days")), h("dd", {}, String(pending.consult_days))] : null,
  );
  $("#handover-answer").hidden = data.access !== "handover";
  $("#handover-withdraw").hidden = data.access !== "team";
}

function renderForms(data) {
  const responsible = data.access === "team";
  $("#enrol").hidden = !responsible || Boolean(data.current);
  $("#discharge").hidden = !responsible || !data.current;
  $("#handover-propose").hidden = !data.receiving_teams.length || Boolean(pendingOf(data));
  replaceChildren(
    $("#handover-to"),
    data.receiving_teams.map((team) =>
      h("option", { value: team.id }, team.organisation_name ? `${team.name} (${team.organisation_name})` : team.name),
    ),
  );
}

function renderEvents(data) {
  replaceChildren(
    $("#episode-events"),
    [...data.events].reverse().map((event) =>
      h(
        "li",
        { "data-event": event.kind },
        t("episode_event_line", {
          time: formatTime(event.at),
          what: t(`episode_event_${event.kind}`),
          team: event.team_name,
          who: event.username ? `, ${event.username}` : "",
        }),
      ),
    ),
  );
}

async function load() {
  state = await api(`${base}/episodes`);
  renderSummary(state);
  renderPending(state);
  renderForms(state);
  renderEvents(state);
}

/** Run an action: errors go to the alert region, success is announced and the section reloaded. */
async function act(run, done) {
  const error = $("#episode-error");
  error.textContent = "";
  try {
    const result = await run();
    await load();
    const message = done(result);
    $("#episode-message").textContent = message;
    announce(message);
  } catch (failure) {
    error.textContent = failure.fieldErrors?.length ? failure.fieldErrors.map((e) => e.message).join(" ") : failure.message;
  }
}

function value(selector) {
  return $(selector).value.trim();
}

async function prefill() {
  if ($("#handover-situation").value) return;
  const draft = await api(`${base}/handovers/draft`);
  $("#handover-situation").value = draft.situation;
  $("#handover-plan").value = draft.plan;
  $("#handover-alarms").value = draft.open_alarms;
  $("#handover-watch").value = draft.watch;
}

function wire() {
  $("#enrol-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const conditions = value("#enrol-conditions").split(",").map((c) => c.trim()).filter(Boolean);
    act(
      () => api(`${base}/episodes`, { method: "POST", body: { reason: value("#enrol-reason"), conditions, protocol: $("#enrol-protocol").value, plan: value("#enrol-plan") } }),
      () => t("episode_enrolled"),
    );
  });
  $("#discharge-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act(
      () => api(`${base}/episodes/current/discharge`, { method: "POST", body: { reason: value("#discharge-reason"), summary: value("#discharge-summary") } }),
      () => t("episode_discharged"),
    );
  });
  $("#handover-propose").addEventListener("toggle", () => {
    if ($("#handover-propose").open) prefill().catch((failure) => ($("#episode-error").textContent = failure.message));
  });
  $("#handover-consult").addEventListener("change", () => {
    $("#handover-consult-days").disabled = !$("#handover-consult").checked;
  });
  $("#handover-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const consult = $("#handover-consult").checked ? Number($("#handover-consult-days").value) : null;
    const body = {
      to_team_id: $("#handover-to").value,
      situation: value("#handover-situation"),
      plan: value("#handover-plan"),
      open_alarms: value("#handover-alarms"),
      watch: value("#handover-watch"),
      consult_days: consult,
    };
    act(() => api(`${base}/handovers`, { method: "POST", body }), () => t("handover_proposed")).then(() => {
      if (!$("#handover-pending").hidden) $("#handover-pending-title").focus();
    });
  });
  const decide = (action, body, message) => {
    const pending = pendingOf(state);
    if (!pending) return;
    act(() => api(`/api/v1/handovers/${pending.id}/${action}`, { method: "POST", body }), message);
  };
  $("#handover-accept").addEventListener("click", () =>
    decide("accept", undefined, (result) => {
      $("#edit-link").hidden = false; // the team is responsible now
      return [t("handover_accepted"), result.consult_days ? t("handover_consult_granted", { n: result.consult_days }) : ""].join(" ").trim();
    }),
  );
  $("#handover-decline-form").addEventListener("submit", (event) => {
    event.preventDefault();
    decide("decline", { reason: value("#decline-reason") }, () => t("handover_declined"));
  });
  $("#handover-withdraw").addEventListener("click", () => decide("withdraw", undefined, () => t("handover_withdrawn")));
}

async function main() {
  if (!requireSession() || !patientId) return;
  try {
    await load();
  } catch {
    return; // the patient page shows the no-access state itself
  }
  wire();
}

main();
