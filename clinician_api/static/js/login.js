import { ApiError, api, endSession, startSession } from "./api.js";
import { $ } from "./dom.js";
import { t } from "./i18n.js";

const params = new URLSearchParams(location.search);
const reason = params.get("reason");
if (reason === "expired" || reason === "signed_out" || reason === "idle") {
  const notice = $("#login-notice");
  notice.textContent = t(`login_${reason}`);
  notice.hidden = false;
}

function target() {
  const next = params.get("next") || "";
  return next.startsWith("/dashboard") && !next.startsWith("/dashboard/login") ? next : "/dashboard/";
}

$("#login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("#login-error");
  const username = $("#username").value.trim();
  const password = $("#password").value;
  if (!username || !password) {
    error.textContent = t("login_missing");
    return;
  }
  error.textContent = "";
  endSession();
  try {
    const answer = await api("/api/v1/auth/session", {
      method: "POST",
      form: { username, password },
      credentials: "same-origin",
    });
    startSession(answer.access_token, answer.expires_in, answer.idle_timeout);
    location.assign(target());
  } catch (failure) {
    if (failure instanceof ApiError && failure.status === 401) error.textContent = t("login_wrong");
    else if (failure instanceof ApiError && failure.status === 429) error.textContent = t("login_rate_limited");
    else error.textContent = t("error_generic", { detail: failure.message });
    $("#password").select();
  }
});
$("#username").focus();
