// Where the staff issuer's sign-in lands: trade the one-time code in the fragment for the dashboard's token.
import { ApiError, api, endSession, startSession } from "./api.js";
import { $ } from "./dom.js";
import { t } from "./i18n.js";

const code = new URLSearchParams(location.hash.slice(1)).get("code");
history.replaceState(null, "", location.pathname + location.search);
const next = new URLSearchParams(location.search).get("next") || "/dashboard/";

async function main() {
  endSession();
  try {
    const answer = await api("/api/v1/auth/oidc/handoff", { method: "POST", body: { code: code || "" } });
    startSession(answer.access_token, answer.expires_in, answer.idle_timeout);
    location.replace(next.startsWith("/dashboard/") ? next : "/dashboard/");
  } catch (failure) {
    $("#oidc-status").textContent = failure instanceof ApiError && failure.status === 401 ? t("login_expired") : t("error_generic", { detail: failure.message });
  }
}

main();
