import { $, announce, h, replaceChildren } from "../dom.js";
import { t } from "../i18n.js";
import { api } from "./mapi.js";
import { boot, dateTime, failed, noAccess, roleName } from "./shell.js";

let session;
let openThread = null;

function threadItem(thread) {
  const state = thread.awaiting_team_since ? t("thread_waiting") : t("thread_answered");
  return h(
    "li",
    {},
    h(
      "button",
      { type: "button", class: "thread-link", "data-thread": thread.id, onclick: () => show(thread.id) },
      h("span", { class: "thread-subject" }, thread.subject),
      h("span", { class: "muted" }, ` · ${dateTime.format(new Date(thread.last_message_at))} · ${state}`),
      thread.unread ? h("span", { class: "unread" }, ` · ${t("thread_unread", { n: thread.unread })}`) : null,
    ),
  );
}

async function loadThreads() {
  const { items } = await api(`${session.base}/threads`);
  $("#threads-empty").hidden = items.length > 0;
  replaceChildren($("#threads"), items.map(threadItem));
}

function messageItem(m) {
  const signature = t("signed_by", { name: m.author_name, role: roleName(m.author_role) });
  return h(
    "li",
    { class: m.from_team ? "from-team" : "from-me" },
    h("p", { class: "signature" }, h("strong", {}, signature), m.on_behalf ? ` (${t("on_behalf")})` : "", h("span", { class: "muted" }, ` · ${dateTime.format(new Date(m.sent_at))}`)),
    h("p", { class: "body" }, m.body),
  );
}

async function show(threadId) {
  const thread = await api(`${session.base}/threads/${threadId}`);
  openThread = thread.id;
  $("#thread").hidden = false;
  $("#thread-heading").textContent = thread.subject;
  replaceChildren($("#thread-messages"), thread.messages.map(messageItem));
  $("#thread-heading").setAttribute("tabindex", "-1");
  $("#thread-heading").focus();
  await loadThreads();
}

async function main() {
  session = await boot();
  if (!session) return;
  if (!session.may("write_messages")) return noAccess(t("cannot_write"));
  try {
    await loadThreads();
    $("#loading").remove();
    $("#messages-area").hidden = false;
  } catch (error) {
    return failed(error);
  }
  $("#new-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const subject = $("#new-subject").value.trim();
    const body = $("#new-body").value.trim();
    const error = $("#new-error");
    if (!subject || !body) {
      error.textContent = t("message_missing");
      return;
    }
    error.textContent = "";
    try {
      const thread = await api(`${session.base}/threads`, { method: "POST", body: { subject, body } });
      $("#new-subject").value = "";
      $("#new-body").value = "";
      announce(t("sent"));
      await show(thread.id);
    } catch (failure) {
      error.textContent = t("error_generic", { detail: failure.message });
    }
  });
  $("#reply-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = $("#reply-body").value.trim();
    const error = $("#reply-error");
    if (!body) {
      error.textContent = t("reply_missing");
      return;
    }
    error.textContent = "";
    try {
      await api(`${session.base}/threads/${openThread}/messages`, { method: "POST", body: { body } });
      $("#reply-body").value = "";
      announce(t("sent"));
      await show(openThread);
    } catch (failure) {
      error.textContent = t("error_generic", { detail: failure.message });
    }
  });
}

main();
