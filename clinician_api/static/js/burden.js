// Alarm burden: alarms per patient-week for each of the user's care teams, and which rule raises them, so a team
// lead sees which rule makes the noise. The API decides which teams the user may see and audits every look.
import { api } from "./api.js";
import { $, announce, h, replaceChildren } from "./dom.js";
import { lang, t } from "./i18n.js";
import { currentTeam, me, onTeamChange, signedIn } from "./shell.js";

let teams = [];

const number = (value, digits = 2) =>
  value === null || value === undefined
    ? "–"
    : new Intl.NumberFormat(lang === "nb" ? "nb-NO" : "en-GB", { maximumFractionDigits: digits }).format(value);

function percent(share) {
  return new Intl.NumberFormat(lang === "nb" ? "nb-NO" : "en-GB", { style: "percent" }).format(share);
}

function ruleRow(rule) {
  return h(
    "tr",
    { "data-rule": rule.rule },
    h("th", { scope: "row" }, lang === "nb" ? rule.label_nb : rule.label_en, h("div", { class: "muted" }, h("code", {}, rule.rule))),
    h("td", { class: "number" }, String(rule.alarms)),
    h("td", { class: "number" }, String(rule.red)),
    h("td", { class: "number", "data-cell": "per-week" }, number(rule.per_patient_week, 3)),
    h("td", { class: "number" }, percent(rule.share)),
    h("td", { class: "number" }, String(rule.repeats_cleared)),
  );
}

function teamSection(team) {
  const heading = `burden-team-${team.team_id}`;
  return h(
    "section",
    { class: "burden-team", "data-team": team.team_id, "aria-labelledby": heading },
    h("h2", { id: heading }, team.team),
    h(
      "p",
      { class: "burden-summary", "data-cell": "team-per-week" },
      t("burden_summary", {
        alarms: team.alarms,
        rate: number(team.per_patient_week, 2),
        patients: team.patients,
        weeks: number(team.patient_weeks, 1),
      }),
    ),
    team.rules.length === 0
      ? h("p", { class: "empty" }, t("burden_no_alarms"))
      : h(
          "div",
          { class: "table-scroll", tabindex: "0", role: "region", "aria-labelledby": heading },
          h(
            "table",
            { class: "list burden" },
            h("caption", { class: "visually-hidden" }, t("burden_caption", { team: team.team })),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["burden_col_rule", "burden_col_alarms", "burden_col_red", "burden_col_rate", "burden_col_share", "burden_col_cleared"].map(
                  (key) => h("th", { scope: "col" }, t(key)),
                ),
              ),
            ),
            h("tbody", {}, team.rules.map(ruleRow)),
          ),
        ),
  );
}

function render() {
  const team = currentTeam();
  const shown = teams.filter((x) => !team || x.team_id === team);
  replaceChildren($("#burden-teams"), shown.map(teamSection));
  $("#burden-empty").hidden = shown.length > 0;
}

async function load() {
  $("#burden-error").textContent = "";
  try {
    const doc = await api("/api/v1/alarm-burden", { query: { days: $("#burden-days").value } });
    teams = doc.teams;
    render();
    announce(t("burden_loaded", { days: doc.days }));
  } catch (error) {
    $("#burden-error").textContent = t("error_generic", { detail: error.message });
  }
}

if (signedIn) {
  $("#burden-days").addEventListener("change", load);
  $("#burden-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  onTeamChange(render);
  me.then(load);
}
