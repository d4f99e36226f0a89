// The patient's measurement schedule on the patient page: the schedule in force, the step-ups that made it (with
// the words the patient's gateway shows), whether the gateway has it yet, and every change.
import { h, replaceChildren } from "./dom.js";
import { formatTime, kindName, lang, t } from "./i18n.js";

function changeText(change) {
  const vars = {
    kind: kindName(change.kind),
    zone: t(`schedule_zone_${change.zone}`),
    reason: change.details.reason ?? "",
  };
  return t(`schedule_change_${change.change}`, vars);
}

function stepView(step) {
  return h(
    "div",
    { class: `schedule-step zone-${step.zone}`, "data-kind": step.kind, "data-zone": step.zone },
    h(
      "p",
      {},
      t("schedule_stepped_up", {
        kind: kindName(step.kind),
        zone: t(`schedule_zone_${step.zone}`),
        since: formatTime(step.since),
        until: step.until,
        green: step.green_days,
        needed: step.green_days_needed,
      }),
    ),
    h("p", { class: "label" }, t("schedule_patient_told")),
    h("blockquote", { class: "patient-notice", lang }, lang === "nb" ? step.notice_nb : step.notice_en),
  );
}

/** Render the `/schedule` view of a patient into `target`. */
export function renderSchedule(target, view) {
  const delivery = view.published
    ? null
    : h(
        "p",
        { class: "warning", role: "status" },
        view.publish_error ? t("schedule_not_delivered", { error: view.publish_error }) : t("schedule_not_delivered_pending"),
      );
  const items = view.schedule.map((item) => h("li", {}, t("schedule_item", { kind: kindName(item.kind), time: item.deadline })));
  const history = view.history.map((change) =>
    h("li", { "data-change": change.change }, h("time", { datetime: change.at }, formatTime(change.at)), " ", changeText(change)),
  );
  replaceChildren(
    target,
    view.steps.length ? view.steps.map(stepView) : h("p", { class: "muted" }, t("schedule_plan_own")),
    delivery,
    items.length > 0 && [h("p", { class: "label" }, t("schedule_in_force")), h("ul", { id: "schedule-items" }, items)],
    h("h3", {}, t("schedule_history")),
    history.length ? h("ol", { id: "schedule-history", class: "history" }, history) : h("p", { class: "muted" }, t("schedule_no_history")),
  );
}
