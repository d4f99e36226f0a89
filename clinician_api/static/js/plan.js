// A self-management plan shown two ways: the clinician's summary, and the patient's own view (the preview).
import { h } from "./dom.js";
import { formatTime, kindName, kinds, lang, patientLanguages, t } from "./i18n.js";

const ZONES = ["green", "yellow", "red"];
const ZONE_ICON = { green: "✓", yellow: "◆", red: "▲" };
const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

function number(value, kind, language) {
  const decimals = kinds[kind]?.decimals ?? 1;
  return new Intl.NumberFormat(language === "nb" ? "nb-NO" : "en-GB", { maximumFractionDigits: Math.max(decimals, 1) }).format(value);
}

/** The patient's words for when a kind is in a zone, from the zone limits (strictly beyond a limit breaches). */
function condition(zone, z, language, say) {
  const unit = kinds[z.kind]?.unit_display ?? "";
  const n = (v) => `${number(v, z.kind, language)} ${unit}`.trim();
  const parts = [];
  if (zone === "red") {
    if (z.red_low !== null && z.red_low !== undefined) parts.push(say("patient_below", { v: n(z.red_low) }));
    if (z.red_high !== null && z.red_high !== undefined) parts.push(say("patient_above", { v: n(z.red_high) }));
  } else if (zone === "yellow") {
    if (z.yellow_low !== null && z.yellow_low !== undefined) parts.push(say("patient_below", { v: n(z.yellow_low) }));
    if (z.yellow_high !== null && z.yellow_high !== undefined) parts.push(say("patient_above", { v: n(z.yellow_high) }));
  } else {
    const low = z.yellow_low ?? z.red_low;
    const high = z.yellow_high ?? z.red_high;
    if (low !== null && low !== undefined && high !== null && high !== undefined)
      parts.push(say("patient_between", { low: n(low), high: n(high) }));
    else if (low !== null && low !== undefined) parts.push(say("patient_at_least", { v: n(low) }));
    else if (high !== null && high !== undefined) parts.push(say("patient_at_most", { v: n(high) }));
  }
  return parts.length ? `${patientLanguages[language].kinds[z.kind]} ${parts.join(say("patient_or"))}` : null;
}

/** What the patient will see on the gateway or app, in `lang` ("nb" or "en"). */
export function patientView(body, language) {
  const vocabulary = patientLanguages[language];
  const say = (key, vars = {}) => vocabulary.strings[key].replace(/\{(\w+)\}/g, (_, name) => vars[name] ?? "");
  const schedule = (body.schedule || []).map((item) =>
    h(
      "li",
      {},
      say("patient_schedule_item", {
        kind: vocabulary.kinds[item.kind],
        days: item.weekdays.length === 7 ? say("patient_every_day") : item.weekdays.map((d) => say(`patient_wd_${d}`)).join(", "),
        time: item.deadline,
      }),
    ),
  );
  const zones = ZONES.map((zone) => {
    const conditions = (body.zones || []).map((z) => condition(zone, z, language, say)).filter(Boolean);
    const general = (body.advice || []).find((a) => a.zone === zone && !a.kind);
    const specific = (body.advice || []).filter((a) => a.zone === zone && a.kind);
    return h(
      "section",
      { class: `patient-zone zone-${zone}`, "data-zone": zone },
      h("h4", {}, h("span", { "aria-hidden": "true" }, `${ZONE_ICON[zone]} `), say(`patient_zone_${zone}`)),
      conditions.length > 0 && h("p", { class: "condition" }, conditions.join("; ")),
      general && h("p", { class: "advice" }, general[language]),
      specific.map((a) => h("p", { class: "advice" }, h("strong", {}, `${vocabulary.kinds[a.kind]}: `), a[language])),
    );
  });
  // A contact row still being typed shows what it has: never "(): " for an empty one.
  const contacts = (body.contacts || [])
    .filter((c) => c.name || c.role || c.phone)
    .map((c) => {
      const who = [c.name, c.role ? `(${c.role})` : ""].filter(Boolean).join(" ");
      return h("li", {}, who && c.phone ? `${who}: ` : who, c.phone ? h("span", { class: "phone" }, c.phone) : null);
    });
  return h(
    "div",
    { lang: language },
    h("h4", {}, say("patient_plan_title")),
    schedule.length > 0 && [h("p", { class: "label" }, say("patient_schedule")), h("ul", {}, schedule)],
    zones,
    contacts.length > 0 && [h("p", { class: "label" }, say("patient_contacts")), h("ul", {}, contacts)],
  );
}

function limitText(z, name) {
  return z[name] === null || z[name] === undefined ? "–" : number(z[name], z.kind, lang);
}

/** The clinician's summary of a stored plan version. */
export function planSummary(version) {
  const body = version.body;
  return h(
    "div",
    { class: "plan-summary", "data-version": version.version },
    h(
      "p",
      {},
      h("strong", {}, t("plan_version", { n: version.version })),
      " · ",
      t(`protocol_${body.protocol}`),
      body.diagnosis ? ` · ${body.diagnosis}` : "",
      body.spo2_scale === 2 ? ` · ${t("plan_spo2_scale_2")}` : "",
      body.oxygen ? ` · ${t("plan_oxygen_summary", { flow: number(body.oxygen.litres_per_minute, "spo2", lang) })}` : "",
      version.activated_at ? ` · ${t("plan_activated_at", { time: formatTime(version.activated_at) })}` : "",
    ),
    (body.zones || []).length > 0 &&
      h(
        "table",
        { class: "list compact" },
        h("caption", {}, t("plan_zones")),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            [t("col_kind"), t("limit_red_low"), t("limit_yellow_low"), t("limit_yellow_high"), t("limit_red_high")].map((c) =>
              h("th", { scope: "col" }, c),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          body.zones.map((z) =>
            h(
              "tr",
              {},
              h("th", { scope: "row" }, `${kindName(z.kind)} (${kinds[z.kind]?.unit_display ?? ""})`),
              ["red_low", "yellow_low", "yellow_high", "red_high"].map((name) => h("td", {}, limitText(z, name))),
            ),
          ),
        ),
      ),
    h("details", {}, h("summary", {}, t("plan_show_patient_view")), h("div", { class: "patient-screen" }, patientView(body, lang))),
  );
}

export { WEEKDAYS, ZONES };
