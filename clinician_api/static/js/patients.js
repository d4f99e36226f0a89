// The patient list of the chosen team (or all the user's teams), searchable by name, with each patient's episode.
import { api } from "./api.js";
import { $, badge, h, replaceChildren } from "./dom.js";
import { formatAge, formatTime, t } from "./i18n.js";
import { currentTeam, me, onTeamChange } from "./shell.js";

async function load() {
  const q = $("#patient-q").value.trim();
  try {
    const page = await api("/api/v1/patients", { query: { team: currentTeam(), q, limit: 200 } });
    const rows = page.items.map((p) =>
      h(
        "tr",
        {},
        h(
          "th",
          { scope: "row" },
          h("a", { href: `/dashboard/patients/${p.id}` }, p.display_name),
          p.emergency_access && h("span", { class: "tag tag-escalated" }, t("emergency_tag")),
          (p.access === "consultative" || p.access === "handover") && h("span", { class: "tag" }, t(`episode_access_tag_${p.access}`)),
        ),
        h(
          "td",
          {},
          p.team_name,
          !p.episode && h("span", { class: "muted" }, ` · ${t("episode_list_none")}`),
          p.episode?.pending_to_team_name && h("span", { class: "tag" }, t("episode_list_pending", { team: p.episode.pending_to_team_name })),
        ),
        h("td", {}, t(`protocol_${p.protocol}`)),
        h(
          "td",
          {},
          p.worst_alarm
            ? [badge(p.worst_alarm.severity, t(`severity_${p.worst_alarm.severity}`)), " ", t("open_alarms", { n: p.open_alarms })]
            : h("span", { class: "muted" }, t("no_open_alarms")),
        ),
        h(
          "td",
          {},
          p.last_measured_at
            ? h("time", { datetime: p.last_measured_at, title: formatTime(p.last_measured_at) }, formatAge(p.last_measured_at))
            : "–",
        ),
      ),
    );
    replaceChildren($("#patients-body"), rows);
    $("#patients-empty").hidden = rows.length > 0;
    $("#patients-error").textContent = "";
  } catch (error) {
    $("#patients-error").textContent = t("error_generic", { detail: error.message });
  }
}

$("#patient-search").addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
onTeamChange(load);
me.then(load);
