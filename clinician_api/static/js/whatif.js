// The threshold editor's what-if line: while the clinician edits a kind's limits, what the patient's last 90 days
// would have given with them ("Med disse grensene ville de siste 90 dagene gitt N alarmer (M nå)"), from the API's
// replay (POST …/thresholds/what-if), before anything is saved. Requests are debounced and a newer edit aborts the
// one in flight, so the line always speaks of the limits in the form. The line is an aria-live="polite" region.
import { ApiError, api } from "./api.js";
import { t } from "./i18n.js";

const DEBOUNCE_MS = 400;

/**
 * Keep `output` up to date with the what-if of `collect()` (the PUT body of the form's edit, or null while the
 * form holds something the API would not take). `url` is the what-if route. Returns `refresh`, to call when the
 * limits in force change (after a save).
 */
export function watchWhatIf({ form, output, collect, url }) {
  let timer = null;
  let inFlight = null;

  async function run() {
    inFlight?.abort();
    const body = collect();
    if (!body) {
      output.dataset.state = "invalid";
      output.textContent = t("what_if_invalid");
      return;
    }
    const controller = new AbortController();
    inFlight = controller;
    output.dataset.state = "pending";
    output.setAttribute("aria-busy", "true");
    try {
      const result = await api(url, { method: "POST", body, signal: controller.signal });
      if (controller.signal.aborted) return;
      output.dataset.state = "ready";
      output.dataset.alarmsNow = String(result.alarms_now);
      output.dataset.alarmsProposed = String(result.alarms_proposed);
      output.textContent = t("what_if_line", { days: result.days, n: result.alarms_proposed, m: result.alarms_now });
    } catch (error) {
      if (controller.signal.aborted || error?.name === "AbortError") return;
      const refused = error instanceof ApiError && error.status === 422;
      const invalid = refused && error.fieldErrors.length > 0;
      output.dataset.state = invalid ? "invalid" : "error";
      if (invalid) output.textContent = t("what_if_invalid");
      else if (refused) output.textContent = t("what_if_too_many");
      else output.textContent = t("what_if_unavailable", { detail: error.message });
    } finally {
      if (inFlight === controller) {
        inFlight = null;
        output.removeAttribute("aria-busy");
      }
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(run, DEBOUNCE_MS);
  }

  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
  run();
  return { refresh: schedule };
}
