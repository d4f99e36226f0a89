// The patient page's contact section: the patient's reservations (read only), proxies (who holds which; register
// one on the patient's documented wish; revoke) and message threads (read, answer signed with the nurse's name
// and role, reply templates).
import { api, requireSession } from "./api.js";
import { $, $$, announce, h, replaceChildren } from "./dom.js";
import { formatTime, lang, patientId, t } from "./i18n.js";

const base = `/api/v1/patients/${patientId}`;
let openThread = new URLSearchParams(location.search).get("thread");

function role(name) {
  return t(`contact_role_${name}`);
}

function renderReservations(reservations) {
  replaceChildren(
    $("#contact-reservations"),
    Object.entries(reservations).map(([kind, state]) => {
      const what = t(`contact_reservation_${kind}`);
      return state.reserved
        ? h("li", { class: "reserved", "data-reservation": kind }, h("strong", {}, t("contact_reserved", { what, time: formatTime(state.changed_at), who: `${state.changed_by} (${role(state.changed_by_role)})` })))
        : h("li", { "data-reservation": kind }, t("contact_not_reserved", { what }));
    }),
  );
}

function renderProxies(proxies) {
  $("#contact-proxies-empty").hidden = proxies.length > 0;
  replaceChildren(
    $("#contact-proxies"),
    proxies.map((p) =>
      p.active
        ? h(
            "li",
            {},
            t("contact_proxy_line", { name: p.relative_name, relation: p.relation, rights: p.rights.map((r) => t(`contact_right_${r}`)).join(", "), until: formatTime(p.valid_until), by: `${p.granted_by} (${role(p.granted_by_role)})` }),
            " ",
            h("button", { type: "button", class: "secondary", onclick: () => revoke(p.id) }, t("contact_proxy_revoke")),
          )
        : h("li", { class: "muted" }, t("contact_proxy_ended", { name: p.relative_name, relation: p.relation })),
    ),
  );
}

function renderThreads(threads) {
  $("#contact-threads-empty").hidden = threads.length > 0;
  replaceChildren(
    $("#contact-threads"),
    threads.map((th) =>
      h(
        "li",
        {},
        h("button", { type: "button", class: "link", onclick: () => show(th.id) }, th.subject),
        ` · ${formatTime(th.last_message_at)}`,
        th.awaiting_team_since ? h("strong", {}, ` · ${t("contact_waiting")}`) : null,
      ),
    ),
  );
}

async function show(threadId) {
  const thread = await api(`${base}/threads/${threadId}`);
  openThread = thread.id;
  $("#contact-thread").hidden = false;
  $("#contact-thread-subject").textContent = thread.subject;
  replaceChildren(
    $("#contact-thread-messages"),
    thread.messages.map((m) => h("li", {}, h("p", {}, h("strong", {}, `${m.author_name}, ${role(m.author_role)}`), ` · ${formatTime(m.sent_at)}`), h("p", { class: "message-body" }, m.body))),
  );
}

async function revoke(proxyId) {
  await api(`${base}/proxies/${proxyId}/revoke`, { method: "POST" });
  await load();
}

async function load() {
  const data = await api(`${base}/contact`);
  renderReservations(data.reservations);
  renderProxies(data.proxies);
  renderThreads(data.threads);
  if (openThread) await show(openThread);
}

async function main() {
  if (!requireSession() || !patientId) return;
  try {
    await load();
    const templates = await api("/api/v1/reply-templates", { query: { lang } });
    const select = $("#reply-template");
    for (const item of templates.items) select.append(h("option", { value: item.body }, item.title));
    select.addEventListener("change", () => {
      if (select.value) $("#reply-text").value = select.value;
    });
  } catch {
    return; // the patient page shows the no-access state itself
  }
  $("#contact-reply").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = $("#reply-text").value.trim();
    if (!body || !openThread) return;
    await api(`${base}/threads/${openThread}/messages`, { method: "POST", body: { body } });
    $("#reply-text").value = "";
    announce(t("contact_sent"));
    await load();
  });
  $("#proxy-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const rights = $$("input[name=proxy-right]:checked").map((i) => i.value);
    const body = {
      relative_name: $("#proxy-name").value.trim(),
      relative_national_id: $("#proxy-nid").value.replace(/\s/g, ""),
      relation: $("#proxy-relation").value.trim(),
      rights,
      valid_until: $("#proxy-until").value ? new Date(`${$("#proxy-until").value}T23:59:59`).toISOString() : "",
      basis: $("#proxy-basis").value.trim(),
    };
    const error = $("#proxy-error");
    if (!body.relative_name || !/^[0-9]{11}$/.test(body.relative_national_id) || !body.relation || !rights.length || !body.valid_until || body.basis.length < 10) {
      error.textContent = t("contact_proxy_missing");
      return;
    }
    error.textContent = "";
    try {
      await api(`${base}/proxies`, { method: "POST", body });
      event.target.reset();
      await load();
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
}

main();
