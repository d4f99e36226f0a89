// What every signed-in page shares: the session check, the user and team switch in the header, and sign-out.
import { api, requireSession, signOut } from "./api.js";
import { $, h } from "./dom.js";
import { t } from "./i18n.js";
import { keepSession } from "./session.js";

const TEAM = "varde.team";
const listeners = [];

export function currentTeam() {
  return sessionStorage.getItem(TEAM) || "";
}

export function onTeamChange(listener) {
  listeners.push(listener);
}

function setupLogout() {
  $("#logout")?.addEventListener("click", async () => {
    await signOut();
    location.assign("/dashboard/login?reason=signed_out");
  });
}

async function loadMe() {
  const me = await api("/api/v1/me");
  const name = $("#user-name");
  if (name) name.textContent = `${me.display_name || me.username} (${t(`role_${me.role}`)})`;
  const audit = $("#nav-audit");
  if (audit) audit.hidden = !(me.role === "admin" || me.lead_of?.length);
  const select = $("#team-switch");
  if (select) {
    const chosen = currentTeam();
    for (const team of me.teams) {
      select.append(h("option", { value: team.id, selected: team.id === chosen }, team.name));
    }
    if (chosen && !me.teams.some((team) => team.id === chosen)) sessionStorage.removeItem(TEAM);
    select.addEventListener("change", () => {
      sessionStorage.setItem(TEAM, select.value);
      for (const listener of listeners) listener(select.value);
    });
  }
  return me;
}

export const signedIn = requireSession();
export const me = signedIn ? loadMe() : new Promise(() => {});
setupLogout();
if (signedIn) keepSession();
