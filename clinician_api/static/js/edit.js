// Editing a patient's limits and self-management plan. The API validates; its field errors are shown next to
// the fields they name (`data-loc` holds each field's place in the request body).
import { ApiError, api } from "./api.js";
import { $, $$, announce, h, replaceChildren } from "./dom.js";
import { showNoAccess } from "./glass.js";
import { formatTime, formatValue, kindName, kinds, lang, patientId, protocolLimits, t } from "./i18n.js";
import { WEEKDAYS, ZONES, patientView } from "./plan.js";
import { signedIn } from "./shell.js";
import { watchWhatIf } from "./whatif.js";

const LIMITS = ["red_low", "yellow_low", "yellow_high", "red_high"];
const KINDS = Object.keys(kinds);
let patient = null;
let profile = null;
let versions = [];
let baseVersion = null;
let previewLang = "nb";
let whatIf = null;

const base = () => `/api/v1/patients/${patientId}`;

// --- errors next to fields -----------------------------------------------------------------------------------

function clearErrors(form) {
  for (const el of $$(".field-error.api", form)) el.remove();
  for (const el of $$("[aria-invalid]", form)) el.removeAttribute("aria-invalid");
}

/** Put each message next to the element whose data-loc is the longest prefix of the error's location. */
function showErrors(form, errors, fallback) {
  let first = null;
  for (const { loc, message } of errors) {
    const path = loc[0] === "body" ? loc.slice(1) : loc;
    let target = null;
    for (let n = path.length; n >= 0 && !target; n -= 1) {
      const key = path.slice(0, n).join(".");
      target = form.querySelector(`[data-loc="${CSS.escape(key)}"]`);
    }
    target ??= fallback;
    const id = `err-${Math.random().toString(36).slice(2)}`;
    const note = h("p", { class: "field-error api error", id }, message);
    if (target.matches("input, select, textarea")) {
      target.setAttribute("aria-invalid", "true");
      target.setAttribute("aria-describedby", [target.getAttribute("aria-describedby"), id].filter(Boolean).join(" "));
      target.after(note);
      first ??= target;
    } else if (target === fallback) {
      target.append(note);
    } else {
      target.append(note);
      first ??= target.querySelector("input, select, textarea");
    }
  }
  (first ?? fallback).focus?.();
}

// --- limits --------------------------------------------------------------------------------------------------

function sourceLabel(limit) {
  if (limit.source === "protocol" && limit.condition && limit.condition !== "general")
    return t("source_condition", { condition: t(`condition_${limit.condition}`) });
  return t(`source_${limit.source}`);
}

/** Which conditions the limits are composed from (the safer limit wins), and the plan's NEWS2 settings. */
function renderConditions() {
  const names = (profile.conditions ?? []).map((c) => t(`protocol_${c}`));
  const parts = [names.length ? t("limits_conditions", { conditions: names.join(", ") }) : t("limits_no_condition")];
  if (profile.spo2_scale === 2) parts.push(t("plan_spo2_scale_2"));
  if (profile.on_oxygen) parts.push(t("plan_oxygen"));
  $("#limits-conditions").textContent = parts.join(" · ");
}

/** The kinds the patient's protocol follows (and any the patient measures or has own limits for). */
function followedKinds() {
  const followed = new Set(profile.followed_kinds?.length ? profile.followed_kinds : KINDS);
  return profile.kinds.filter((k) => followed.has(k.kind));
}

/** "Usual 98 ± 0.4 % (14 readings), personal limits since …" for a kind whose run-in is over. */
function personalNote(k) {
  if (!k.personal) return null;
  const spread = new Intl.NumberFormat(lang, {
    minimumFractionDigits: (kinds[k.kind]?.decimals ?? 1) + 1,
    maximumFractionDigits: (kinds[k.kind]?.decimals ?? 1) + 1,
  }).format(k.personal.spread);
  return h(
    "span",
    { class: "muted personal-baseline", "data-personal": k.kind },
    t("personal_usual", {
      value: formatValue(k.kind, k.personal.centre),
      spread,
      unit: kinds[k.kind].unit_display,
      n: k.personal.n,
      date: formatTime(k.personal.computed_at),
    }),
  );
}

function renderLimitsTable() {
  const rows = followedKinds().map((k) =>
    h(
      "tr",
      { "data-kind": k.kind },
      h("th", { scope: "row" }, `${kindName(k.kind)} (${kinds[k.kind].unit_display})`, k.personal && h("br"), personalNote(k)),
      LIMITS.map((name) =>
        h(
          "td",
          { "data-limit": name },
          k[name].value === null ? "–" : formatValue(k.kind, k[name].value),
          k[name].source !== "none" && h("span", { class: `source source-${k[name].source}` }, ` ${sourceLabel(k[name])}`),
        ),
      ),
    ),
  );
  replaceChildren($("#limits-table tbody"), rows);
  renderConditions();
}

/** The value a limit inherits: the composed default the API reports, else the primary protocol's. */
function protocolDefault(kind, name) {
  const limit = profile.kinds.find((k) => k.kind === kind)?.[name];
  if (limit && limit.source === "protocol") return limit.value;
  if (limit && limit.inherited !== undefined) return limit.inherited;
  return protocolLimits[patient.protocol]?.[kind]?.[name] ?? null;
}

function renderLimitRows() {
  const kind = $("#limit-kind").value;
  const current = profile.kinds.find((k) => k.kind === kind);
  const unit = kinds[kind].unit_display;
  $("#limit-legend").textContent = t("limits_for", { kind: kindName(kind), unit });
  const rows = LIMITS.map((name) => {
    const limit = current[name];
    // What "inherit" gives: the personal (or hard-floor) limit where the run-in is over, else the protocol's.
    const inherited = ["personal", "hard_floor"].includes(limit.source) ? limit.value : protocolDefault(kind, name);
    const mode = limit.source === "override" || limit.source === "plan" ? (limit.value === null ? "off" : "custom") : "inherit";
    const select = h(
      "select",
      { id: `mode-${name}`, "data-limit-mode": name },
      h("option", { value: "inherit", selected: mode === "inherit" }, t("mode_inherit", { value: inherited === null ? t("no_limit") : `${formatValue(kind, inherited)} ${unit}` })),
      h("option", { value: "custom", selected: mode === "custom" }, t("mode_custom")),
      h("option", { value: "off", selected: mode === "off" }, t("mode_off")),
    );
    const input = h("input", {
      id: `value-${name}`,
      type: "number",
      step: "any",
      inputmode: "decimal",
      "data-loc": `limits.${kind}.${name}`,
      "data-limit-value": name,
      value: mode === "custom" ? limit.value : "",
      disabled: mode !== "custom",
    });
    select.addEventListener("change", () => {
      input.disabled = select.value !== "custom";
      if (!input.disabled) input.focus();
    });
    return h(
      "div",
      { class: "limit-row" },
      h("label", { for: `mode-${name}` }, t(`limit_${name}`), limit.source === "plan" ? h("span", { class: "muted" }, ` (${t("source_plan")})`) : null),
      select,
      h("label", { for: `value-${name}`, class: "visually-hidden" }, `${t(`limit_${name}`)} (${unit})`),
      h("span", { class: "value-with-unit" }, input, h("span", { class: "unit" }, unit)),
    );
  });
  replaceChildren($("#limit-rows"), rows);
}

/** The form's edit of the chosen kind as the PUT body's `limits` entry, and the fields that are not numbers. */
function collectLimitEdit() {
  const kind = $("#limit-kind").value;
  const edit = { unit: kinds[kind].unit };
  const local = [];
  for (const name of LIMITS) {
    const mode = $(`#mode-${name}`).value;
    const raw = $(`#value-${name}`).value.trim().replace(",", ".");
    if (mode === "custom") {
      const value = Number(raw);
      if (raw === "" || !Number.isFinite(value)) local.push({ loc: ["limits", kind, name], message: t("error_number") });
      edit[name] = value;
    } else {
      edit[name] = mode === "off" ? "off" : null;
    }
  }
  return { kind, edit, local };
}

async function saveLimits(event) {
  event.preventDefault();
  const form = $("#limits-form");
  clearErrors(form);
  $("#limits-saved").textContent = "";
  $("#limits-error").textContent = "";
  const { kind, edit, local } = collectLimitEdit();
  if (local.length) {
    showErrors(form, local, $("#limits-error"));
    return;
  }
  try {
    profile = await api(`${base()}/thresholds`, { method: "PUT", body: { limits: { [kind]: edit } } });
    renderLimitsTable();
    renderLimitRows();
    $("#limits-saved").textContent = t("limits_saved", { kind: kindName(kind) });
    whatIf?.refresh();
  } catch (error) {
    if (error instanceof ApiError && error.fieldErrors.length) {
      $("#limits-error").textContent = t("error_fix_fields");
      showErrors(form, error.fieldErrors, $("#limits-error"));
    } else {
      $("#limits-error").textContent = t("error_generic", { detail: error.message });
    }
  }
}

// --- trend rules: weight gain over days, drift from the personal baseline -------------------------------------

const TRENDS = ["weight_gain_kg", "weight_window_days", "spo2_drop", "pulse_drift", "baseline_days", "baseline_min_readings"];
const OPTIONAL_TRENDS = new Set(["weight_gain_kg", "spo2_drop", "pulse_drift"]);

function trendNumber(value) {
  return value === null ? "" : new Intl.NumberFormat(lang === "nb" ? "nb-NO" : "en-GB", { maximumFractionDigits: 1 }).format(value);
}

function renderTrends() {
  const rows = profile.trends.map((trend) => {
    const id = `trend-${trend.setting}`;
    const mode = trend.source === "override" || trend.source === "plan" ? (trend.value === null ? "off" : "custom") : "inherit";
    const select = h(
      "select",
      { id: `${id}-mode`, "data-trend-mode": trend.setting },
      h("option", { value: "inherit", selected: mode === "inherit" }, t("trend_inherit", { value: trend.source === "protocol" ? trendNumber(trend.value) : t("trend_none") })),
      h("option", { value: "custom", selected: mode === "custom" }, t("mode_custom")),
      OPTIONAL_TRENDS.has(trend.setting) && h("option", { value: "off", selected: mode === "off" }, t("trend_off")),
    );
    const input = h("input", {
      id,
      type: "text",
      inputmode: "decimal",
      "data-loc": `trends.${trend.setting}`,
      value: mode === "custom" ? trendNumber(trend.value) : "",
      disabled: mode !== "custom",
    });
    select.addEventListener("change", () => {
      input.disabled = select.value !== "custom";
      if (!input.disabled) input.focus();
    });
    return h(
      "div",
      { class: "limit-row", "data-trend": trend.setting },
      h("label", { for: `${id}-mode` }, t(`trend_${trend.setting}`), h("span", { class: `source source-${trend.source}` }, ` ${sourceLabel(trend)}`)),
      select,
      h("label", { for: id, class: "visually-hidden" }, t(`trend_${trend.setting}`)),
      h("span", { class: "value-with-unit" }, input, h("span", { class: "unit" }, t(`trend_unit_${trend.setting}`))),
    );
  });
  replaceChildren($("#trend-rows"), rows);
}

async function saveTrends(event) {
  event.preventDefault();
  const form = $("#trends-form");
  clearErrors(form);
  $("#trends-saved").textContent = "";
  $("#trends-error").textContent = "";
  const trends = {};
  const local = [];
  for (const name of TRENDS) {
    const mode = $(`#trend-${name}-mode`).value;
    const raw = $(`#trend-${name}`).value.trim().replace(",", ".");
    if (mode === "custom") {
      const value = Number(raw);
      if (raw === "" || !Number.isFinite(value)) local.push({ loc: ["trends", name], message: t("error_number") });
      trends[name] = value;
    } else {
      trends[name] = mode === "off" ? "off" : null;
    }
  }
  if (local.length) {
    showErrors(form, local, $("#trends-error"));
    return;
  }
  try {
    profile = await api(`${base()}/thresholds`, { method: "PUT", body: { trends } });
    renderTrends();
    whatIf?.refresh();
    $("#trends-saved").textContent = t("trends_saved");
  } catch (error) {
    if (error instanceof ApiError && error.fieldErrors.length) {
      $("#trends-error").textContent = t("error_fix_fields");
      showErrors(form, error.fieldErrors, $("#trends-error"));
    } else {
      $("#trends-error").textContent = t("error_generic", { detail: error.message });
    }
  }
}

// --- plan form -----------------------------------------------------------------------------------------------

function kindSelect(value, label) {
  return h(
    "select",
    { "aria-label": label, "data-field": "kind" },
    KINDS.map((kind) => h("option", { value: kind, selected: kind === value }, kindName(kind))),
  );
}

function removeButton(label) {
  return h("button", { type: "button", class: "secondary small", "data-remove": "", "aria-label": label }, t("remove"));
}

function field(label, control) {
  return h("label", { class: "stacked" }, h("span", {}, label), control);
}

function scheduleRow(item = { kind: "spo2", deadline: "10:00", weekdays: [...WEEKDAYS], reminder_minutes_before: 60 }) {
  return h(
    "div",
    { class: "plan-row", "data-row": "schedule" },
    field(t("col_kind"), kindSelect(item.kind, t("col_kind"))),
    field(t("plan_deadline"), h("input", { type: "time", "data-field": "deadline", value: item.deadline, required: true })),
    h(
      "fieldset",
      { class: "weekdays", "data-field-group": "weekdays" },
      h("legend", {}, t("plan_weekdays")),
      WEEKDAYS.map((day) =>
        h("label", { class: "check" }, h("input", { type: "checkbox", "data-weekday": day, checked: item.weekdays.includes(day) }), t(`wd_${day}`)),
      ),
    ),
    field(
      t("plan_reminder"),
      h("input", { type: "number", min: 0, max: 720, step: 1, "data-field": "reminder_minutes_before", value: item.reminder_minutes_before }),
    ),
    removeButton(t("remove_schedule")),
  );
}

/** A need-driven step-up: when an alarm on `kind` opens at `zone`, measure it at `deadlines` every day (entries of
 * other kinds in the step are kept as they were), for at least `days` days and until `green_days` green days. */
function stepRow(step = { kind: "body_weight", zone: "yellow", schedule: [], questionnaires: [], days: 5, green_days: 3 }) {
  const own = (step.schedule ?? []).filter((e) => e.kind === step.kind);
  const others = (step.schedule ?? []).filter((e) => e.kind !== step.kind);
  const asked = step.questionnaires?.[0];
  const offered = baseVersion?.body.questionnaires ?? [];
  return h(
    "div",
    { class: "plan-row", "data-row": "step_ups", "data-others": JSON.stringify(others) },
    field(t("step_kind"), kindSelect(step.kind, t("step_kind"))),
    field(
      t("step_zone"),
      h("select", { "data-field": "zone" }, ["yellow", "red"].map((zone) => h("option", { value: zone, selected: zone === step.zone }, t(`zone_${zone}`)))),
    ),
    field(t("step_deadlines"), h("input", { "data-field": "deadlines", value: own.map((e) => e.deadline).join(", ") || "09:00, 20:00", required: true })),
    field(t("step_days"), h("input", { type: "number", min: 1, max: 60, step: 1, "data-field": "days", value: step.days ?? 5 })),
    field(t("step_green_days"), h("input", { type: "number", min: 1, max: 30, step: 1, "data-field": "green_days", value: step.green_days ?? 3 })),
    field(
      t("step_questionnaire"),
      h(
        "select",
        { "data-field": "questionnaire" },
        h("option", { value: "" }, t("step_questionnaire_none")),
        offered.map((q) => h("option", { value: q.id, selected: asked?.id === q.id }, lang === "nb" ? q.title_nb : q.title_en)),
      ),
    ),
    field(t("step_questionnaire_deadline"), h("input", { type: "time", "data-field": "questionnaire_deadline", value: asked?.deadline ?? "18:00" })),
    removeButton(t("remove_step_up")),
  );
}

function zoneRow(zone = { kind: "spo2", red_low: null, yellow_low: null, yellow_high: null, red_high: null }) {
  return h(
    "div",
    { class: "plan-row", "data-row": "zones" },
    field(t("col_kind"), kindSelect(zone.kind, t("col_kind"))),
    LIMITS.map((name) =>
      field(t(`limit_${name}`), h("input", { type: "number", step: "any", inputmode: "decimal", "data-field": name, value: zone[name] ?? "" })),
    ),
    removeButton(t("remove_zone")),
  );
}

function adviceRow(advice, general) {
  const zoneControl = general
    ? h("input", { type: "hidden", "data-field": "zone", value: advice.zone })
    : h(
        "select",
        { "data-field": "zone", "aria-label": t("col_zone") },
        ZONES.map((zone) => h("option", { value: zone, selected: zone === advice.zone }, t(`zone_${zone}`))),
      );
  return h(
    "div",
    { class: `plan-row advice-row${general ? ` zone-${advice.zone}` : ""}`, "data-row": "advice", "data-general": general ? advice.zone : null },
    general ? h("p", { class: "label" }, t("advice_general", { zone: t(`zone_${advice.zone}`) })) : [field(t("col_zone"), zoneControl), field(t("col_kind"), kindSelect(advice.kind, t("col_kind")))],
    general && zoneControl,
    field(t("advice_nb"), h("textarea", { rows: 2, lang: "nb", "data-field": "nb", required: true }, advice.nb ?? "")),
    field(t("advice_en"), h("textarea", { rows: 2, lang: "en", "data-field": "en", required: true }, advice.en ?? "")),
    !general && removeButton(t("remove_advice")),
  );
}

function contactRow(contact = { name: "", role: "", phone: "" }) {
  return h(
    "div",
    { class: "plan-row", "data-row": "contacts" },
    field(t("contact_name"), h("input", { "data-field": "name", value: contact.name, required: true })),
    field(t("contact_role"), h("input", { "data-field": "role", value: contact.role, required: true })),
    field(t("contact_phone"), h("input", { type: "tel", "data-field": "phone", value: contact.phone, required: true })),
    removeButton(t("remove_contact")),
  );
}

function fillPlanForm(body) {
  $("#plan-protocol").value = body.protocol;
  $("#plan-diagnosis").value = body.diagnosis ?? "";
  $("#plan-timezone").value = body.timezone ?? "Europe/Oslo";
  $("#plan-spo2-scale").value = String(body.spo2_scale ?? 1);
  $("#plan-oxygen").checked = Boolean(body.oxygen);
  $("#plan-oxygen-flow").value = body.oxygen?.litres_per_minute ?? "";
  $("#plan-oxygen-flow").disabled = !body.oxygen;
  replaceChildren($("#schedule-rows"), (body.schedule ?? []).map((item) => scheduleRow(item)));
  replaceChildren($("#zone-rows"), (body.zones ?? []).map((zone) => zoneRow(zone)));
  replaceChildren($("#step-rows"), (body.step_ups ?? []).map((step) => stepRow(step)));
  const general = ZONES.map((zone) => adviceRow(body.advice?.find((a) => a.zone === zone && !a.kind) ?? { zone }, true));
  const specific = (body.advice ?? []).filter((a) => a.kind).map((a) => adviceRow(a, false));
  replaceChildren($("#advice-rows"), general, specific);
  replaceChildren($("#contact-rows"), (body.contacts?.length ? body.contacts : [undefined]).map((c) => contactRow(c)));
  const questionnaires = body.questionnaires ?? [];
  $("#plan-questionnaires").textContent = questionnaires.length ? t("plan_questionnaires_kept", { n: questionnaires.length }) : "";
  updatePreview();
}

/** A first plan: zones for the kinds whose limits were set for this patient, from the limits in force now. */
function emptyPlan() {
  const zones = profile.kinds
    .filter((k) => LIMITS.some((name) => k[name].source === "override" || k[name].source === "plan"))
    .map((k) => Object.fromEntries([["kind", k.kind], ...LIMITS.map((name) => [name, k[name].value])]));
  return {
    protocol: patient.protocol,
    timezone: patient.timezone,
    schedule: [],
    zones,
    advice: ZONES.map((zone) => ({ zone, nb: "", en: "" })),
    contacts: [],
    questionnaires: [],
  };
}

function numberOrNull(input) {
  const raw = input.value.trim().replace(",", ".");
  return raw === "" ? null : Number(raw);
}

/** The form as a plan body, each row and control tagged with its place in the body for error messages. */
function collectPlan() {
  const body = {
    protocol: $("#plan-protocol").value,
    diagnosis: $("#plan-diagnosis").value.trim() || null,
    timezone: $("#plan-timezone").value.trim(),
    schedule: [],
    zones: [],
    advice: [],
    contacts: [],
    questionnaires: baseVersion?.body.questionnaires ?? [],
    step_ups: [],
    spo2_scale: Number($("#plan-spo2-scale").value),
    oxygen: $("#plan-oxygen").checked ? { litres_per_minute: numberOrNull($("#plan-oxygen-flow")) } : null,
    trends: baseVersion?.body.trends ?? [],
  };
  const tag = (row, list, index) => {
    row.dataset.loc = `${list}.${index}`;
    for (const control of $$("[data-field]", row)) control.dataset.loc = `${list}.${index}.${control.dataset.field}`;
    const group = $("[data-field-group]", row);
    if (group) group.dataset.loc = `${list}.${index}.${group.dataset.fieldGroup}`;
  };
  const value = (row, name) => $(`[data-field="${name}"]`, row).value;
  $$('[data-row="schedule"]').forEach((row, i) => {
    tag(row, "schedule", i);
    body.schedule.push({
      kind: value(row, "kind"),
      deadline: value(row, "deadline"),
      weekdays: $$("[data-weekday]", row).filter((box) => box.checked).map((box) => box.dataset.weekday),
      reminder_minutes_before: Number(value(row, "reminder_minutes_before") || 0),
    });
  });
  $$('[data-row="zones"]').forEach((row, i) => {
    tag(row, "zones", i);
    const kind = value(row, "kind");
    const zone = { kind, unit: kinds[kind].unit };
    for (const name of LIMITS) zone[name] = numberOrNull($(`[data-field="${name}"]`, row));
    body.zones.push(zone);
  });
  $$('[data-row="advice"]').forEach((row, i) => {
    tag(row, "advice", i);
    const advice = { zone: value(row, "zone"), nb: value(row, "nb").trim(), en: value(row, "en").trim() };
    if (!row.dataset.general) advice.kind = value(row, "kind");
    body.advice.push(advice);
  });
  $$('[data-row="step_ups"]').forEach((row, i) => {
    tag(row, "step_ups", i);
    const kind = value(row, "kind");
    const deadlines = value(row, "deadlines").split(/[\s,;]+/).filter(Boolean);
    const questionnaire = value(row, "questionnaire");
    body.step_ups.push({
      kind,
      zone: value(row, "zone"),
      schedule: [
        ...deadlines.map((deadline) => ({ kind, deadline, weekdays: [...WEEKDAYS], reminder_minutes_before: 60 })),
        ...JSON.parse(row.dataset.others || "[]"),
      ],
      questionnaires: questionnaire ? [{ id: questionnaire, deadline: value(row, "questionnaire_deadline") }] : [],
      days: Number(value(row, "days") || 0),
      green_days: Number(value(row, "green_days") || 0),
    });
  });
  $$('[data-row="contacts"]').forEach((row, i) => {
    tag(row, "contacts", i);
    body.contacts.push({ name: value(row, "name").trim(), role: value(row, "role").trim(), phone: value(row, "phone").trim() });
  });
  return body;
}

function updatePreview() {
  replaceChildren($("#preview"), patientView(collectPlan(), previewLang));
}

function renderVersions() {
  if (!versions.length) {
    replaceChildren($("#plan-versions"), h("p", { class: "muted" }, t("no_plan_versions")));
    return;
  }
  const rows = versions.map((v) =>
    h(
      "tr",
      { "data-version": v.version, "data-status": v.status },
      h("th", { scope: "row" }, t("plan_version", { n: v.version })),
      h("td", {}, t(`plan_status_${v.status}`)),
      h("td", {}, formatTime(v.created_at)),
      h("td", {}, v.activated_at ? formatTime(v.activated_at) : "–"),
      h(
        "td",
        { class: "actions" },
        h("button", { type: "button", class: "secondary small", onclick: () => useVersion(v), "aria-label": t("plan_use_as_base_label", { n: v.version }) }, t("plan_use_as_base")),
        v.status === "draft" &&
          h("button", { type: "button", class: "primary small", "data-activate": v.version, onclick: () => activate(v.version), "aria-label": t("plan_activate_label", { n: v.version }) }, t("plan_activate")),
      ),
    ),
  );
  replaceChildren(
    $("#plan-versions"),
    h(
      "table",
      { class: "list compact" },
      h("caption", {}, t("plan_versions")),
      h("thead", {}, h("tr", {}, [t("col_version"), t("col_status"), t("col_created"), t("col_activated"), t("col_actions")].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows),
    ),
  );
}

function useVersion(version, focus = true) {
  baseVersion = version;
  $("#plan-base").textContent = t("plan_based_on", { n: version.version, status: t(`plan_status_${version.status}`) });
  fillPlanForm(version.body);
  if (focus) $("#plan-protocol").focus();
}

async function reloadVersions() {
  versions = (await api(`${base()}/plans`)).items;
  renderVersions();
}

async function savePlan(event) {
  event.preventDefault();
  const form = $("#plan-form");
  clearErrors(form);
  $("#plan-saved").textContent = "";
  $("#plan-error").textContent = "";
  try {
    const created = await api(`${base()}/plans`, { method: "POST", body: collectPlan() });
    baseVersion = created;
    await reloadVersions();
    $("#plan-base").textContent = t("plan_based_on", { n: created.version, status: t("plan_status_draft") });
    $("#plan-saved").textContent = t("plan_saved", { n: created.version });
  } catch (error) {
    if (error instanceof ApiError && error.fieldErrors.length) {
      $("#plan-error").textContent = t("error_fix_fields");
      showErrors(form, error.fieldErrors, $("#plan-error"));
    } else {
      $("#plan-error").textContent = t("error_generic", { detail: error.message });
    }
  }
}

async function activate(version) {
  $("#plan-saved").textContent = "";
  $("#plan-error").textContent = "";
  try {
    const active = await api(`${base()}/plans/${version}/activate`, { method: "POST" });
    await reloadVersions();
    profile = await api(`${base()}/thresholds`);
    renderLimitsTable();
    renderLimitRows();
    whatIf?.refresh();
    $("#plan-saved").textContent = t("plan_activated", { n: version, gateways: active.published_to.length });
    announce(t("plan_activated", { n: version, gateways: active.published_to.length }));
  } catch (error) {
    const text = error instanceof ApiError && error.status === 503 ? t("error_broker") : error.message;
    $("#plan-error").textContent = t("error_generic", { detail: text });
  }
}

function setupPlanForm() {
  const form = $("#plan-form");
  form.addEventListener("input", updatePreview);
  form.addEventListener("change", updatePreview);
  form.addEventListener("click", (event) => {
    const remove = event.target.closest("[data-remove]");
    if (!remove) return;
    const row = remove.closest(".plan-row");
    const fieldset = row.closest("fieldset");
    row.remove();
    $("button", fieldset)?.focus();
    updatePreview();
  });
  const adders = [
    ["#add-schedule", "#schedule-rows", () => scheduleRow()],
    ["#add-zone", "#zone-rows", () => zoneRow()],
    ["#add-step", "#step-rows", () => stepRow()],
    ["#add-advice", "#advice-rows", () => adviceRow({ zone: "red", kind: "spo2", nb: "", en: "" }, false)],
    ["#add-contact", "#contact-rows", () => contactRow()],
  ];
  for (const [button, container, make] of adders) {
    $(button).addEventListener("click", () => {
      const row = make();
      $(container).append(row);
      $("input, select, textarea", row)?.focus();
      updatePreview();
    });
  }
  form.addEventListener("submit", savePlan);
  for (const button of $$("[data-preview-lang]")) {
    button.addEventListener("click", () => {
      previewLang = button.dataset.previewLang;
      for (const other of $$("[data-preview-lang]")) other.setAttribute("aria-pressed", String(other === button));
      updatePreview();
    });
  }
}

// --- start ---------------------------------------------------------------------------------------------------

async function load() {
  try {
    patient = await api(base());
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      showNoAccess(load);
      return;
    }
    $("#loading").textContent = t("error_generic", { detail: error.message });
    return;
  }
  profile = await api(`${base()}/thresholds`);
  versions = (await api(`${base()}/plans`)).items;
  $("#patient-name").textContent = patient.display_name;
  $("#back-link").href = `/dashboard/patients/${patientId}`;
  const select = $("#limit-kind");
  const offered = followedKinds().map((k) => k.kind);
  replaceChildren(select, offered.map((kind, i) => h("option", { value: kind, selected: i === 0 }, kindName(kind))));
  select.addEventListener("change", renderLimitRows);
  $("#plan-oxygen").addEventListener("change", () => {
    $("#plan-oxygen-flow").disabled = !$("#plan-oxygen").checked;
    if ($("#plan-oxygen").checked) $("#plan-oxygen-flow").focus();
  });
  renderTrends();
  $("#trends-form").addEventListener("submit", saveTrends);
  renderLimitsTable();
  renderLimitRows();
  $("#limits-form").addEventListener("submit", saveLimits);
  whatIf = watchWhatIf({
    form: $("#limits-form"),
    output: $("#limits-what-if"),
    url: `${base()}/thresholds/what-if`,
    collect: () => {
      const { kind, edit, local } = collectLimitEdit();
      return local.length ? null : { limits: { [kind]: edit } };
    },
  });
  renderVersions();
  setupPlanForm();
  const start = versions.find((v) => v.status === "active") ?? versions[0];
  if (start) useVersion(start, false);
  else fillPlanForm(emptyPlan());
  $("#loading").hidden = true;
  $("#editor").hidden = false;
}

if (signedIn) load();
