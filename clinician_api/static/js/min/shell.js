// What every page of the patient app shares: who is signed in, whom they are looking at (themself, or a patient
// whose proxy they hold: `?p=` in the address), the menu limited to what that proxy gives, and signing out.
import { $, $$, h, replaceChildren } from "../dom.js";
import { lang, t } from "../i18n.js";
import { api } from "./mapi.js";

const NAV_RIGHT = {
  home: "read_measurements",
  plan: "read_plan",
  questionnaire: "answer_questionnaires",
  messages: "write_messages",
  log: "read_access_log",
  sharing: "own",
};

export { lang };

function rightsOf(patient) {
  return new Set(patient.own ? [...patient.rights, "own"] : patient.rights);
}

/** Load the session; returns {me, patient, rights, may(right)} or null when there is nobody to look at. */
export async function boot() {
  const me = await api("/api/v1/min/me");
  $("#who-name").textContent = me.name;
  $("#logout").addEventListener("click", async () => {
    await api("/api/v1/min/logout", { method: "POST" });
    location.assign("/min/login?reason=signed_out");
  });
  const wanted = new URLSearchParams(location.search).get("p");
  const patient = me.patients.find((p) => p.patient_id === wanted) ?? me.patients[0] ?? null;
  if (!patient) {
    $("#loading")?.remove();
    const note = $("#no-access");
    note.textContent = t("nobody");
    note.hidden = false;
    return null;
  }
  const rights = rightsOf(patient);
  const select = $("#acting");
  if (me.patients.length > 1) {
    replaceChildren(
      select,
      me.patients.map((p) =>
        h(
          "option",
          { value: p.patient_id, selected: p.patient_id === patient.patient_id },
          p.own ? t("acting_self") : t("acting_relative", { name: p.name, relation: p.relation }),
        ),
      ),
    );
    select.hidden = false;
    $("#acting-label").hidden = false;
    select.addEventListener("change", () => {
      const params = new URLSearchParams(location.search);
      params.set("p", select.value);
      location.assign(`${location.pathname}?${params}`);
    });
  }
  for (const link of $$("[data-nav]")) {
    const right = NAV_RIGHT[link.dataset.nav];
    link.parentElement.hidden = !rights.has(right);
    const url = new URL(link.href);
    url.searchParams.set("p", patient.patient_id);
    link.href = url.pathname + url.search;
  }
  return { me, patient, rights, may: (right) => rights.has(right), base: `/api/v1/min/patients/${patient.patient_id}` };
}

/** Show that the proxy does not cover this page (the server refuses it too). */
export function noAccess(text = t("no_right")) {
  $("#loading")?.remove();
  const note = $("#no-access");
  note.textContent = text;
  note.hidden = false;
}

export function failed(error) {
  $("#loading")?.remove();
  const note = $("#no-access");
  note.textContent = error?.status === 403 ? t("no_right") : t("error_generic", { detail: error?.message ?? "" });
  note.hidden = false;
}

const locale = lang === "nb" ? "nb-NO" : "en-GB";
export const dateTime = new Intl.DateTimeFormat(locale, { weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit" });
export const dateOnly = new Intl.DateTimeFormat(locale, { day: "numeric", month: "long", year: "numeric" });
export const timeOnly = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit" });
export const shortDay = new Intl.DateTimeFormat(locale, { day: "numeric", month: "short" });

export function number(value, decimals = 1) {
  return new Intl.NumberFormat(locale, { minimumFractionDigits: decimals, maximumFractionDigits: decimals }).format(value);
}

export function roleName(role) {
  return t(`role_${role}`);
}

/** Why the schedule is stepped up and for how long, in the words the gateway's page shows. */
export function scheduleNotices(notices) {
  return notices.map((n) => h("p", { class: "notice schedule-notice", "data-zone": n.zone }, h("strong", {}, t("schedule_stepped_up")), " ", n.text));
}
