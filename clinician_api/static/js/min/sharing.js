import { $, $$, announce, h, replaceChildren } from "../dom.js";
import { t } from "../i18n.js";
import { api } from "./mapi.js";
import { boot, dateOnly, dateTime, failed, noAccess, roleName } from "./shell.js";

let session;

function reservationControl(kind, state) {
  const id = `reservation-${kind}`;
  // The question is phrased as sharing ("send my measurements"); the stored fact is the reservation (a no).
  const input = h("input", { type: "checkbox", id, checked: !state.reserved, "data-kind": kind });
  input.addEventListener("change", async () => {
    input.disabled = true;
    try {
      await api(`${session.base}/reservations/${kind}`, { method: "PUT", body: { reserved: !input.checked } });
      announce(t("reservation_saved"));
      await load(`#${id}`);
    } catch (error) {
      failed(error);
    }
  });
  const changed = state.changed_at
    ? h("p", { class: "muted" }, t("reservation_changed", { time: dateTime.format(new Date(state.changed_at)), who: `${state.changed_by} (${roleName(state.changed_by_role)})` }))
    : null;
  return h("div", { class: "reservation" }, h("label", { class: "check big", for: id }, input, " ", t(`reservation_${kind}`)), changed);
}

function proxyItem(p) {
  const rights = p.rights.map((r) => t(`right_${r}`)).join(", ");
  const until = dateOnly.format(new Date(p.valid_until));
  if (p.revoked_at) return h("li", { class: "muted" }, t("proxy_ended", { name: p.relative_name, relation: p.relation, time: dateTime.format(new Date(p.revoked_at)) }));
  if (!p.active) return h("li", { class: "muted" }, t("proxy_expired", { name: p.relative_name, relation: p.relation, until }));
  return h(
    "li",
    {},
    h("p", {}, t("proxy_line", { name: p.relative_name, relation: p.relation, rights, until })),
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: async () => {
          await api(`${session.base}/proxies/${p.id}/revoke`, { method: "POST" });
          announce(t("proxy_revoked"));
          await load("#proxies-heading"); // the button is gone with the proxy
        },
      },
      t("proxy_revoke", { name: p.relative_name }),
    ),
  );
}

/** Render the reservations and proxies; `focus` names what gets the keyboard focus after an action re-rendered
 * the control that had it (otherwise focus would fall back to the page's start). */
async function load(focus = null) {
  const data = await api(`${session.base}/sharing`);
  replaceChildren($("#reservations"), Object.entries(data.reservations).map(([kind, state]) => reservationControl(kind, state)));
  $("#proxies-empty").hidden = data.proxies.length > 0;
  replaceChildren($("#proxies"), data.proxies.map(proxyItem));
  if (focus) $(focus)?.focus();
}

async function main() {
  session = await boot();
  if (!session) return;
  if (!session.may("own")) return noAccess();
  try {
    await load();
    $("#loading").remove();
    $("#sharing").hidden = false;
  } catch (error) {
    return failed(error);
  }
  $("#proxy-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("#proxy-error");
    const rights = $$("input[name=right]:checked").map((i) => i.value);
    const name = $("#proxy-name").value.trim();
    const nid = $("#proxy-nid").value.replace(/\s/g, "");
    const relation = $("#proxy-relation").value.trim();
    const until = $("#proxy-until").value;
    if (!name || !/^[0-9]{11}$/.test(nid) || !relation || !rights.length || !until) {
      error.textContent = t("proxy_missing");
      return;
    }
    error.textContent = "";
    try {
      await api(`${session.base}/proxies`, {
        method: "POST",
        body: { relative_name: name, relative_national_id: nid, relation, rights, valid_until: new Date(`${until}T23:59:59`).toISOString() },
      });
      event.target.reset();
      announce(t("proxy_given"));
      await load();
    } catch (failure) {
      error.textContent = t("error_generic", { detail: failure.message });
    }
  });
}

main();
