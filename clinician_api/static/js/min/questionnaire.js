// Answering the plan's questionnaires: one form per questionnaire, one group of radio buttons per question. The
// server scores the answers and raises an alarm as for an answer on the gateway's screen; the page shows the zone
// and what the plan says to do. Built from data (dom.js), never from HTML strings.
import { $, announce, h, replaceChildren } from "../dom.js";
import { lang, t } from "../i18n.js";
import { api } from "./mapi.js";
import { boot, failed, noAccess, timeOnly } from "./shell.js";

const ZONE_ICON = { green: "✓", yellow: "◆", red: "▲" };
let session;
let planVersion = null;

function answeredLine(done) {
  if (!done) return null;
  const time = timeOnly.format(new Date(done.answered_at));
  const key = done.via === "gateway" ? "questionnaire_answered_gateway" : done.by_relative ? "questionnaire_answered_relative" : "questionnaire_answered";
  const text = t(key, { time, who: done.answered_by });
  return h("p", { class: "muted", "data-answered": "" }, text, " ", t("questionnaire_again"));
}

function questionGroup(questionnaire, question, index) {
  const name = `${questionnaire.id}--${question.id}`;
  return h(
    "fieldset",
    { "data-question": question.id },
    h("legend", {}, `${index + 1}. ${question.text}`),
    question.options.map((option) => {
      const id = `${name}--${option.id}`;
      return h("label", { class: "check big", for: id }, h("input", { type: "radio", id, name, value: option.id }), " ", option.text);
    }),
  );
}

function zoneResult(questionnaire, result) {
  const zone = result.zone;
  return [
    h("h3", { tabindex: "-1", class: "result-heading" }, t("questionnaire_result_heading")),
    h("p", {}, t("questionnaire_sent")),
    zone
      ? h("p", { class: `zone zone-${zone}` }, h("span", { "aria-hidden": "true" }, ZONE_ICON[zone]), " ", t(`zone_${zone}`))
      : null,
    result.advice ? h("p", { class: "advice" }, h("strong", {}, t("what_to_do_now")), " ", result.advice) : null,
  ];
}

function questionnaireForm(questionnaire) {
  const errorId = `${questionnaire.id}-error`;
  const result = h("div", { class: "result", role: "status", "data-result": "" });
  const error = h("p", { id: errorId, class: "error", role: "alert" });
  const form = h(
    "form",
    { novalidate: true, "data-questionnaire": questionnaire.id, "aria-describedby": errorId },
    questionnaire.questions.map((q, i) => questionGroup(questionnaire, q, i)),
    error,
    h("button", { type: "submit", class: "primary" }, t("questionnaire_send")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answers = {};
    const missing = [];
    for (const question of questionnaire.questions) {
      const chosen = form.querySelector(`input[name="${questionnaire.id}--${question.id}"]:checked`);
      if (chosen) answers[question.id] = chosen.value;
      else missing.push(question);
    }
    if (missing.length) {
      error.textContent = t("questionnaire_missing", { questions: missing.map((q) => q.text).join(" ") });
      form.querySelector(`fieldset[data-question="${missing[0].id}"] input`).focus();
      return;
    }
    error.textContent = "";
    try {
      const answer = await api(`${session.base}/questionnaires/${questionnaire.id}/responses`, {
        method: "POST",
        query: { lang },
        body: { plan_version: planVersion, answers },
      });
      replaceChildren(result, zoneResult(questionnaire, answer));
      form.reset();
      announce(t("questionnaire_sent"));
      result.querySelector(".result-heading").focus();
    } catch (failure) {
      if (failure.status === 409) {
        await load();
        $("#questionnaires .error").textContent = t("questionnaire_plan_changed");
        return;
      }
      error.textContent = t("error_generic", { detail: failure.message });
    }
  });
  return h(
    "section",
    { class: "card", "aria-labelledby": `${questionnaire.id}-heading` },
    h("h2", { id: `${questionnaire.id}-heading` }, questionnaire.title),
    questionnaire.deadline ? h("p", {}, t("questionnaire_due", { deadline: questionnaire.deadline })) : null,
    answeredLine(questionnaire.answered_today),
    form,
    result,
  );
}

async function load() {
  const data = await api(`${session.base}/questionnaires`, { query: { lang } });
  planVersion = data.plan_version;
  $("#loading")?.remove();
  $("#questionnaire-none").hidden = data.items.length > 0;
  replaceChildren($("#questionnaires"), data.items.map(questionnaireForm));
}

async function main() {
  session = await boot();
  if (!session) return;
  if (!session.may("answer_questionnaires")) return noAccess();
  if (!session.patient.own) $("#page-title").textContent = t("questionnaire_title_for", { name: session.patient.name });
  try {
    await load();
  } catch (error) {
    failed(error);
  }
}

main();
