// The patient page's period summary: the PDF downloaded (fetched with the session's token, then saved from a
// blob URL), or sent to the patient's record as a DocumentReference through the journal outbox.
import { ApiError, api, authHeaders } from "./api.js";
import { $, announce, h } from "./dom.js";
import { patientId, t } from "./i18n.js";
import { signedIn } from "./shell.js";

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function period() {
  return { start: $("#report-start").value, end: $("#report-end").value, lang: $("#report-lang").value };
}

async function download() {
  const params = new URLSearchParams(period());
  const response = await fetch(`/api/v1/patients/${patientId}/reports/period.pdf?${params}`, { headers: authHeaders(), cache: "no-store" });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => ({})));
  const name = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "")?.[1] || "summary.pdf";
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
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
    run(download);
  });
  $("#report-deliver").addEventListener("click", () => run(deliver));
}
