import { $ } from "../dom.js";
import { t } from "../i18n.js";
import { ApiError, api } from "./mapi.js";

const reason = new URLSearchParams(location.search).get("reason");
const notices = { expired: "login_expired", signed_out: "login_signed_out", failed: "login_failed", unknown: "login_unknown", unavailable: "login_unavailable" };
if (notices[reason]) {
  const notice = $("#login-notice");
  notice.textContent = t(notices[reason]);
  notice.hidden = false;
}

const form = $("#login-form");
form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("#login-error");
  const username = $("#username").value.trim();
  const password = $("#password").value;
  if (!username || !password) {
    error.textContent = t("login_missing");
    return;
  }
  error.textContent = "";
  try {
    await api("/api/v1/min/session", { method: "POST", body: { username, password } });
    location.assign("/min/");
  } catch (failure) {
    if (failure instanceof ApiError && failure.status === 401) error.textContent = t("login_wrong");
    else if (failure instanceof ApiError && failure.status === 429) error.textContent = t("login_rate_limited");
    else error.textContent = t("error_generic", { detail: failure.message });
    $("#password").select();
  }
});
