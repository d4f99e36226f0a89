import { $, h, replaceChildren } from "../dom.js";
import { t } from "../i18n.js";
import { api } from "./mapi.js";
import { boot, dateTime, failed, noAccess, roleName, timeOnly } from "./shell.js";

function entry(e) {
  const verb = e.action === "read" ? t("verb_read") : t("verb_write");
  const who = { who: e.who || roleName(e.role), role: roleName(e.role) };
  const lines = [
    h(
      "p",
      { class: "log-when" },
      h("time", { datetime: e.at }, dateTime.format(new Date(e.at))),
      e.count > 1 ? t("log_times", { n: e.count, first: timeOnly.format(new Date(e.first_at)), last: timeOnly.format(new Date(e.at)) }) : "",
    ),
    h("p", {}, e.action === "answer_questionnaire" ? t("log_answered", who) : t("log_line", { ...who, verb, what: t(`what_${e.what}`) })),
  ];
  if (e.team) lines.push(h("p", { class: "muted" }, t("log_team", { team: e.team })));
  if (e.outcome === "denied") lines.push(h("p", { class: "log-denied" }, t("log_denied")));
  else if (e.why === "emergency") lines.push(h("p", { class: "log-emergency" }, t("log_why_emergency", { reason: e.reason ?? "" })));
  else if (e.why === "proxy") lines.push(h("p", { class: "muted" }, t("log_why_proxy")));
  else if (e.why === "consultative" || e.why === "handover") lines.push(h("p", { class: "muted" }, t(`log_why_${e.why}`)));
  else lines.push(h("p", { class: "muted" }, t("log_why_care_team")));
  return h("li", { class: "card" }, lines);
}

async function main() {
  const session = await boot();
  if (!session) return;
  if (!session.may("read_access_log")) return noAccess();
  try {
    const data = await api(`${session.base}/access-log`);
    $("#loading").remove();
    $("#log").hidden = data.items.length === 0;
    $("#log-empty").hidden = data.items.length > 0;
    replaceChildren($("#log"), data.items.map(entry));
  } catch (error) {
    failed(error);
  }
}

main();
