// Break the glass: open a patient outside the user's care teams for a limited time, with a required reason.
import { ApiError, api } from "./api.js";
import { $, announce } from "./dom.js";
import { patientId, t } from "./i18n.js";

const MIN_REASON = 10;

export function showNoAccess(onGranted) {
  $("#loading").hidden = true;
  $("#no-access").hidden = false;
  $("#no-access-heading").setAttribute("tabindex", "-1");
  $("#no-access-heading").focus();
  const dialog = $("#glass-dialog");
  const reason = $("#glass-reason");
  const error = $("#glass-error");
  const close = () => {
    dialog.close();
    $("#glass-open").focus();
  };
  $("#glass-open").addEventListener("click", () => {
    error.textContent = "";
    reason.removeAttribute("aria-invalid");
    dialog.showModal();
    reason.focus();
  });
  $("#glass-cancel").addEventListener("click", close);
  $("#glass-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = reason.value.trim();
    if (text.length < MIN_REASON) {
      error.textContent = t("glass_reason_short", { n: MIN_REASON });
      reason.setAttribute("aria-invalid", "true");
      reason.focus();
      return;
    }
    try {
      await api(`/api/v1/patients/${patientId}/emergency-access`, {
        method: "POST",
        body: { reason: text, minutes: Number($("#glass-minutes").value) },
      });
      dialog.close();
      $("#no-access").hidden = true;
      announce(t("glass_granted"), true);
      onGranted();
    } catch (failure) {
      reason.setAttribute("aria-invalid", "true");
      if (failure instanceof ApiError && failure.status === 404) error.textContent = t("glass_not_found");
      else if (failure instanceof ApiError && failure.status === 403) error.textContent = t("glass_forbidden");
      else if (failure instanceof ApiError && failure.fieldErrors.length) error.textContent = failure.fieldErrors[0].message;
      else error.textContent = t("error_generic", { detail: failure.message });
    }
  });
}
