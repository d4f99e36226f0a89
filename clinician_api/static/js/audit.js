// The access log for team leads and admins: who read or changed which patient's data, filtered by patient, user
// and time; emergency ("break the glass") access is highlighted with its reason.
import { ApiError, api } from "./api.js";
import { $, h, replaceChildren } from "./dom.js";
import { formatTime, maybe, t } from "./i18n.js";
import { me, signedIn } from "./shell.js";

let next = null;

function query() {
  const iso = (id) => ($(id).value ? new Date($(id).value).toISOString() : null);
  return {
    patient_id: $("#audit-patient").value || null,
    username: $("#audit-user").value.trim() || null,
    from: iso("#audit-from"),
    to: iso("#audit-to"),
    emergency: $("#audit-emergency").checked ? "true" : null,
    limit: 100,
  };
}

function row(entry) {
  return h(
    "tr",
    { class: entry.emergency ? "audit-emergency" : "", "data-emergency": String(entry.emergency) },
    h("td", {}, h("time", { datetime: entry.at }, formatTime(entry.at))),
    h("td", {}, entry.username ?? "–", entry.role ? h("div", { class: "muted" }, t(`role_${entry.role}`)) : null),
    h("td", {}, entry.patient_name ?? (entry.patient_id ? t("audit_other_patient") : "–")),
    h("td", {}, maybe(`audit_action_${entry.action}`, entry.action), h("div", { class: "muted resource" }, entry.resource)),
    h("td", {}, maybe(`audit_outcome_${entry.outcome}`, entry.outcome)),
    h(
      "td",
      {},
      entry.emergency
        ? [h("span", { class: "badge badge-red" }, h("span", { "aria-hidden": "true", class: "icon" }, "▲"), " ", t("audit_glass")), entry.reason ? h("div", {}, entry.reason) : null]
        : "",
    ),
  );
}

async function load(more = false) {
  $("#audit-error").textContent = "";
  try {
    const page = await api("/api/v1/audit", { query: { ...query(), cursor: more ? next : null } });
    next = page.next;
    const rows = page.items.map(row);
    if (more) $("#audit-body").append(...rows);
    else replaceChildren($("#audit-body"), rows);
    $("#audit-empty").hidden = $("#audit-body").childElementCount > 0;
    $("#audit-more").hidden = !next;
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) $("#audit-denied").hidden = false;
    else $("#audit-error").textContent = t("error_generic", { detail: error.message });
  }
}

async function start() {
  const user = await me;
  if (user.role !== "admin" && user.lead_of.length === 0) {
    $("#audit-denied").hidden = false;
    $("#audit-filters").hidden = true;
    return;
  }
  if (user.role !== "admin") {
    const patients = await api("/api/v1/patients", { query: { team: user.lead_of, limit: 200 } });
    $("#audit-patient").append(...patients.items.map((p) => h("option", { value: p.id }, p.display_name)));
  }
  $("#audit-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  $("#audit-more").addEventListener("click", () => load(true));
  await load();
}

if (signedIn) start();
