// The patient page's period summary: the PDF downloaded (fetched with the session's token, then saved from a
// blob URL), or sent to the patient's record as a DocumentReference through the journal outbox.
import { ApiError, api, download } from "./api.js";
import { $, announce } from "./dom.js";
import { patientId, t } from "./i18n.js";
import { signedIn } from "./shell.js";

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function period() {
  return { start: $("#report-start").value, end: $("#report-end").value, lang: $("#report-lang").value };
}

async function downloadPdf() {
  await download(`/api/v1/patients/${patientId}/reports/period.pdf`, period(), "summary.pdf");
}

async function deliver() {
  try {
    await api(`/api/v1/patients/${patientId}/reports/period/deliver`, { method: "POST", body: period() });
    return t("report_delivered");
  } catch (error) {
    if (error instanceof ApiError && error.status === 409) return t("report_no_endpoint");
    throw error;
  }
}

function run(action) {
  $("#report-error").textContent = "";
  $("#report-message").textContent = "";
  action()
    .then((message) => {
      if (message) {
        $("#report-message").textContent = message;
        announce(message);
      }
    })
    .catch((error) => {
      $("#report-error").textContent = t("error_generic", { detail: error.message });
    });
}

if (signedIn && $("#report-form")) {
  const today = new Date();
  $("#report-end").value = isoDay(today);
  $("#report-start").value = isoDay(new Date(today.getTime() - 29 * 86400000));
  $("#report-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run(downloadPdf);
  });
  $("#report-deliver").addEventListener("click", () => run(deliver));
}
