import { $, h, replaceChildren } from "../dom.js";
import { lang, t } from "../i18n.js";
import { api } from "./mapi.js";
import { boot, failed, noAccess, number, scheduleNotices } from "./shell.js";

const ZONES = ["green", "yellow", "red"];
const ICON = { green: "✓", yellow: "◆", red: "▲" };

async function main() {
  const session = await boot();
  if (!session) return;
  if (!session.may("read_plan")) return noAccess();
  try {
    const { plan } = await api(`${session.base}/plan`, { query: { lang } });
    $("#loading").remove();
    if (!plan) {
      $("#no-plan").hidden = false;
      return;
    }
    $("#plan").hidden = false;
    replaceChildren(
      $("#zone-advice"),
      ZONES.map((zone) =>
        h(
          "section",
          { class: `card zone-card zone-card-${zone}`, "aria-labelledby": `zone-${zone}` },
          h("h3", { id: `zone-${zone}` }, h("span", { "aria-hidden": "true" }, ICON[zone]), " ", t(`zone_title_${zone}`)),
          plan.advice
            .filter((a) => a.zone === zone)
            .map((a) => h("p", {}, a.kind_name ? h("strong", {}, t("plan_for_kind", { name: a.kind_name }), " ") : null, a.text)),
        ),
      ),
    );
    const fmt = (v) => (v === null ? t("limit_open") : number(v, 1));
    const limit = (z) => {
      const vars = { name: z.name, unit: z.unit, low: fmt(z.yellow_low), high: fmt(z.yellow_high) };
      if (z.yellow_low !== null && z.yellow_high !== null) return t("limit_line", vars);
      if (z.yellow_high !== null) return t("limit_upto", vars);
      if (z.yellow_low !== null) return t("limit_from", vars);
      return t("limit_red", { ...vars, low: fmt(z.red_low), high: fmt(z.red_high) });
    };
    replaceChildren($("#limits"), plan.zones.map((z) => h("li", {}, limit(z))));
    replaceChildren($("#schedule-notices"), scheduleNotices(plan.schedule_notices));
    replaceChildren(
      $("#schedule"),
      plan.schedule.map((s) =>
        h("li", {}, t("schedule_line", { name: s.name, deadline: s.deadline, days: s.weekdays.length === 7 ? t("every_day") : s.weekdays.map((d) => t(`weekday_${d}`)).join(", ") })),
      ),
    );
    replaceChildren(
      $("#contacts"),
      plan.contacts.map((c) => h("li", {}, t("contact_line", { name: c.name, role: c.role, phone: "" }), h("a", { href: `tel:${c.phone.replace(/ /g, "")}` }, c.phone))),
    );
  } catch (error) {
    failed(error);
  }
}

main();
