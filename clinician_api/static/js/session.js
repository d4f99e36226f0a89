// Keeps a signed-in tab's session for a whole shift: renews the short-lived access token before it expires while
// the page is in use, warns before the idle timeout ends the session, and leaves for the sign-in form when it has.
import { expired, idleForMs, idleTimeoutMs, markActive, refreshSession, tokenExpiresIn } from "./api.js";
import { $ } from "./dom.js";
import { t } from "./i18n.js";

const CHECK_MS = 5000;
const RENEW_BEFORE_MS = 60000;
const WARN_BEFORE_MS = 120000;
let lastMark = 0;

function onActivity() {
  const now = Date.now();
  if (now - lastMark < 1000) return;
  lastMark = now;
  markActive();
  hideWarning();
}

function hideWarning() {
  const warning = $("#session-warning");
  if (warning && !warning.hidden) warning.hidden = true;
}

let home = null;

/** A modal dialog (a note being written) makes the rest of the page inert: the warning goes inside it. */
function placeWarning(warning) {
  home ??= { parent: warning.parentElement, next: warning.nextSibling };
  const dialog = document.querySelector("dialog[open]");
  const parent = dialog ?? home.parent;
  if (warning.parentElement === parent) return;
  if (dialog) dialog.prepend(warning);
  else home.parent.insertBefore(warning, home.next);
}

function showWarning(leftMs) {
  const warning = $("#session-warning");
  if (!warning) return;
  placeWarning(warning);
  const minutes = Math.max(1, Math.ceil(leftMs / 60000));
  $("#session-warning-text").textContent = t(minutes === 1 ? "session_warning_one" : "session_warning", { n: minutes });
  if (warning.hidden) {
    warning.hidden = false;
    $("#session-continue").focus({ preventScroll: true });
  }
}

async function check() {
  const idle = idleTimeoutMs();
  if (!idle) return;
  const idleFor = idleForMs();
  if (idleFor >= idle) {
    expired("idle");
    return;
  }
  if (idle - idleFor <= WARN_BEFORE_MS) showWarning(idle - idleFor);
  else hideWarning();
  if (tokenExpiresIn() < RENEW_BEFORE_MS && !(await refreshSession())) expired();
}

export function keepSession() {
  for (const type of ["pointerdown", "keydown", "wheel", "touchstart"]) {
    document.addEventListener(type, onActivity, { passive: true, capture: true });
  }
  $("#session-continue")?.addEventListener("click", async () => {
    markActive();
    hideWarning();
    if (!(await refreshSession())) expired();
  });
  setInterval(check, CHECK_MS);
}
