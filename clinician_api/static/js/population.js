// The population overview of the chosen team (or all the user's teams): patients by current zone and 7-day trend,
// adherence to the measurement schedule and alarm burden, each team's totals first. Downloadable as CSV (the
// server audits the export) and printable (print styles in varde.css).
import { api, download } from "./api.js";
import { $, announce, badge, h, replaceChildren } from "./dom.js";
import { formatTime, lang, t } from "./i18n.js";
import { currentTeam, me, onTeamChange } from "./shell.js";

const ZONES = ["red", "yellow", "green"];
const TRENDS = ["worse", "stable", "improving"];
const TREND_ICON = { worse: "↗", stable: "→", improving: "↘" };
const number = new Intl.NumberFormat(lang === "nb" ? "nb-NO" : "en-GB", { maximumFractionDigits: 1 });

function query() {
  return { team: currentTeam(), days: $("#population-days").value };
}

function percent(value) {
  return value === null || value === undefined ? t("population_none") : `${number.format(value)} %`;
}

function trend(value) {
  return h("span", { class: `trend trend-${value}` }, h("span", { "aria-hidden": "true" }, TREND_ICON[value]), " ", t(`trend_${value}`));
}

function teamSection(team) {
  const headingId = `team-${team.team_id}`;
  return h(
    "section",
    { class: "population-team", "aria-labelledby": headingId, "data-team": team.team_id },
    h("h2", { id: headingId }, team.team_name),
    h(
      "dl",
      { class: "figures" },
      h("div", {}, h("dt", {}, t("population_patients")), h("dd", { "data-figure": "patients" }, String(team.patients))),
      h(
        "div",
        {},
        h("dt", {}, t("population_adherence")),
        h(
          "dd",
          { "data-figure": "adherence" },
          percent(team.adherence),
          team.planned ? h("span", { class: "muted" }, " ", t("population_adherence_detail", { taken: team.taken, planned: team.planned })) : null,
        ),
      ),
      h("div", {}, h("dt", {}, t("population_burden")), h("dd", { "data-figure": "burden" }, number.format(team.alarms_per_patient_week))),
    ),
    h(
      "table",
      { class: "list compact zone-trend" },
      h("caption", {}, t("population_team_caption")),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("population_col_zone")), TRENDS.map((tr) => h("th", { scope: "col" }, trend(tr))), h("th", { scope: "col" }, t("population_patients")))),
      h(
        "tbody",
        {},
        ZONES.map((zone) =>
          h(
            "tr",
            { "data-zone": zone },
            h("th", { scope: "row" }, badge(zone, t(`zone_${zone}`))),
            TRENDS.map((tr) => h("td", { "data-trend": tr }, String(team.zone_trends[zone][tr]))),
            h("td", { "data-total": zone }, String(team.zones[zone])),
          ),
        ),
      ),
    ),
  );
}

function patientRow(p) {
  return h(
    "tr",
    { "data-patient": p.patient_id, "data-zone": p.zone, "data-trend": p.trend },
    h("th", { scope: "row" }, h("a", { href: `/dashboard/patients/${p.patient_id}` }, p.name)),
    h("td", {}, p.team_name),
    h("td", {}, badge(p.zone, t(`zone_${p.zone}`))),
    h("td", {}, trend(p.trend)),
    h("td", {}, percent(p.adherence), p.planned ? h("div", { class: "muted" }, t("population_adherence_detail", { taken: p.taken, planned: p.planned })) : null),
    h("td", {}, number.format(p.alarms_per_week)),
  );
}

async function load() {
  try {
    const overview = await api("/api/v1/population", { query: query() });
    replaceChildren($("#population-teams"), overview.teams.map(teamSection));
    replaceChildren($("#population-body"), overview.patients.map(patientRow));
    $("#population-empty").hidden = overview.patients.length > 0;
    $("#population-generated").textContent = formatTime(overview.generated_at);
    $("#population-error").textContent = "";
  } catch (error) {
    $("#population-error").textContent = t("error_generic", { detail: error.message });
  }
}

async function exportCsv() {
  await download("/api/v1/population/export.csv", query(), "population.csv");
  $("#population-message").textContent = t("population_exported");
  announce(t("population_exported"));
}

$("#population-days").addEventListener("change", load);
$("#population-export").addEventListener("click", () =>
  exportCsv().catch((error) => {
    $("#population-error").textContent = t("error_generic", { detail: error.message });
  }),
);
$("#population-print").addEventListener("click", () => window.print());
onTeamChange(load);
me.then(load);
