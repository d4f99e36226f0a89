import { $, h, replaceChildren } from "../dom.js";
import { lang, t } from "../i18n.js";
import { kindChart } from "./chart.js";
import { api } from "./mapi.js";
import { boot, dateTime, failed, noAccess, number, roleName, scheduleNotices } from "./shell.js";

const ZONE_ICON = { green: "✓", yellow: "◆", red: "▲" };

function zoneBadge(zone) {
  return h("span", { class: `zone zone-${zone ?? "none"}` }, h("span", { "aria-hidden": "true" }, ZONE_ICON[zone] ?? "•"), " ", zone ? t(`zone_${zone}`) : t("zone_none"));
}

function isToday(iso) {
  const d = new Date(iso);
  const now = new Date();
  return d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
}

function renderToday(kinds) {
  const today = kinds.filter((k) => isToday(k.latest.measured_at));
  $("#today-empty").hidden = today.length > 0;
  replaceChildren(
    $("#today"),
    today.map((k) =>
      h(
        "li",
        { class: `reading reading-${k.latest.zone ?? "none"}` },
        h("p", { class: "reading-name" }, k.name),
        h("p", { class: "reading-value" }, `${number(k.latest.value, k.decimals)} ${k.unit}`),
        zoneBadge(k.latest.zone),
        h("p", { class: "muted" }, t("latest_at", { time: dateTime.format(new Date(k.latest.measured_at)) })),
        k.latest.advice ? h("p", { class: "advice" }, h("strong", {}, t("what_to_do")), " ", k.latest.advice) : null,
      ),
    ),
  );
}

function alarmText(a) {
  const value = a.value === null ? "–" : `${number(a.value, 1)} ${a.unit ?? ""}`.trim();
  if (a.severity === "missed") return t("alarm_missed");
  if (a.state === "resolved") {
    return a.closed_by ? t("alarm_closed", { role: roleName(a.closed_by_role), name: a.closed_by, value }) : t("alarm_closed_plain", { value });
  }
  if (a.state === "acknowledged" && a.seen_by) return t("alarm_seen", { role: roleName(a.seen_by_role), name: a.seen_by, value });
  return t("alarm_open", { value, time: dateTime.format(new Date(a.measured_at ?? a.opened_at)) });
}

async function main() {
  const session = await boot();
  if (!session) return;
  if (!session.may("read_measurements")) return noAccess();
  if (!session.patient.own) $("#page-title").textContent = t("home_title_for", { name: session.patient.name });
  try {
    const [data, alarms, reminders] = await Promise.all([
      api(`${session.base}/measurements`, { query: { lang } }),
      api(`${session.base}/alarms`, { query: { lang } }),
      session.may("read_plan") ? api(`${session.base}/reminders`, { query: { lang } }) : Promise.resolve(null),
    ]);
    $("#loading").remove();
    renderToday(data.kinds);
    replaceChildren($("#charts"), data.kinds.map(kindChart));
    $("#alarms-card").hidden = alarms.items.length === 0;
    replaceChildren($("#alarms"), alarms.items.map((a) => h("li", { class: `alarm alarm-${a.state}` }, alarmText(a))));
    if (reminders) {
      const items = [
        ...reminders.measurements.map((m) =>
          h("li", { class: m.done ? "done" : m.late ? "late" : "" }, m.done ? t("reminder_done", m) : m.late ? t("reminder_late", m) : t("reminder_measure", m)),
        ),
        ...reminders.questionnaires.map((q) =>
          h(
            "li",
            {},
            session.may("answer_questionnaires")
              ? h("a", { href: `/min/questionnaire?p=${session.patient.patient_id}` }, t("reminder_questionnaire", q))
              : t("reminder_questionnaire", q),
          ),
        ),
      ];
      $("#reminders-card").hidden = items.length === 0 && reminders.schedule_notices.length === 0;
      replaceChildren($("#schedule-notices"), scheduleNotices(reminders.schedule_notices));
      replaceChildren($("#reminders"), items);
    }
  } catch (error) {
    failed(error);
  }
}

main();
