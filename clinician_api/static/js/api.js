// The JSON API client: the bearer token lives in this tab's sessionStorage and goes out only in the
// Authorization header (never in a URL, never in a cookie), so no other site can make the browser use it.
// The token is short-lived; `refreshSession` renews it with the HttpOnly refresh cookie (path /api/v1/auth),
// which scripts cannot read and which the browser sends only to the renewal and sign-out routes.
import { lang } from "./i18n.js";

const TOKEN = "varde.token";
const EXPIRES = "varde.token_expires";
const IDLE = "varde.idle_ms";
const ACTIVE = "varde.active_at";
const LOGIN = "/dashboard/login";
const SESSION_HEADER = { "X-Varde-Session": "1" };

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }

  /** Field errors of a 422, each with the message in the page's language. */
  get fieldErrors() {
    return (this.problem.errors || []).map((e) => ({
      loc: (e.loc || []).map(String),
      message: lang === "nb" && e.message_nb ? e.message_nb : e.msg,
    }));
  }
}

export function token() {
  const value = sessionStorage.getItem(TOKEN);
  const expires = Number(sessionStorage.getItem(EXPIRES) || 0);
  if (!value || Date.now() >= expires) return null;
  return value;
}

/** A new token: at sign-in (`fresh`, the user has just typed) or from a renewal (no sign of use by itself). */
export function startSession(accessToken, expiresIn, idleTimeout, { fresh = true } = {}) {
  sessionStorage.setItem(TOKEN, accessToken);
  sessionStorage.setItem(EXPIRES, String(Date.now() + expiresIn * 1000));
  if (idleTimeout) sessionStorage.setItem(IDLE, String(idleTimeout * 1000));
  if (fresh || !localStorage.getItem(ACTIVE)) markActive();
}

/** Milliseconds until the access token expires (negative when it has). */
export function tokenExpiresIn() {
  return Number(sessionStorage.getItem(EXPIRES) || 0) - Date.now();
}

export function idleTimeoutMs() {
  return Number(sessionStorage.getItem(IDLE) || 0);
}

// The time of the last input is shared by this browser's tabs (localStorage), as they share the refresh cookie:
// a tab left in the background does not end the session of the one in use.
export function markActive() {
  localStorage.setItem(ACTIVE, String(Date.now()));
}

export function idleForMs() {
  return Date.now() - Number(localStorage.getItem(ACTIVE) || Date.now());
}

function idleMs() {
  return Math.max(0, Math.round(idleForMs()));
}

/** Forget this tab's session. Note drafts (`varde-draft.*`) stay for the next sign-in in this tab. */
export function endSession() {
  for (const key of Object.keys(sessionStorage)) {
    if (key.startsWith("varde.")) sessionStorage.removeItem(key);
  }
}

let renewing = null;

// A renewal the server could not answer (a 5xx while the database restarts or fails over, or no connection) is not
// a refusal: it is tried again for about a quarter of a minute before the session is given up. Only an answer that
// refuses the session (401, 403) ends it at once.
const RENEW_TRANSIENT_WAITS_MS = [1000, 2000, 4000, 4000, 4000, 4000];

function transientWait(response, tried) {
  const retryAfter = Number(response?.headers.get("Retry-After"));
  const planned = RENEW_TRANSIENT_WAITS_MS[tried];
  if (planned === undefined) return null;
  return Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, 8000) : planned;
}

/** Renew the access token with the refresh cookie; resolves to true when the session goes on. One at a time. */
export function refreshSession() {
  if (!renewing) {
    renewing = (async () => {
      let transient = 0;
      for (;;) {
        let response = null;
        try {
          response = await fetch("/api/v1/auth/refresh", {
            method: "POST",
            // How long since the last input: the server ends a session idle past its limit even while the
            // page keeps renewing (a watched queue renews without input).
            headers: { Accept: "application/json", ...SESSION_HEADER, "X-Varde-Idle-Ms": String(idleMs()) },
            credentials: "same-origin",
            cache: "no-store",
          });
        } catch {
          response = null;
        }
        if (response?.ok) {
          const answer = await response.json();
          startSession(answer.access_token, answer.expires_in, answer.idle_timeout, { fresh: false });
          return true;
        }
        // A refusal (401/403) ends the session. Two tabs renewing at once are not refused: the server gives a
        // token presented again within its grace a successor of its own.
        if (response !== null && response.status < 500) return false;
        const wait = transientWait(response, transient);
        transient += 1;
        if (wait === null) return false;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    })().finally(() => {
      renewing = null;
    });
  }
  return renewing;
}

/** Sign out: the server ends the refresh token, and this tab forgets the session and its drafts. */
export async function signOut() {
  try {
    await fetch("/api/v1/auth/logout", { method: "POST", headers: SESSION_HEADER, credentials: "same-origin" });
  } finally {
    endSession();
    for (const key of Object.keys(sessionStorage)) {
      if (key.startsWith("varde-draft.")) sessionStorage.removeItem(key);
    }
  }
}

export function loginUrl(reason) {
  const next = location.pathname + location.search;
  const params = new URLSearchParams({ next });
  if (reason) params.set("reason", reason);
  return `${LOGIN}?${params}`;
}

/** Leave the page for the sign-in form when there is no valid token. */
export function requireSession() {
  if (token() || (sessionStorage.getItem(TOKEN) && idleForMs() < idleTimeoutMs())) return true;
  const hadSession = sessionStorage.getItem(TOKEN) !== null;
  endSession();
  location.replace(loginUrl(hadSession ? "expired" : null));
  return false;
}

/** The session has ended in this tab (idle, or the server refused it): the server ends the refresh token too,
 * so nobody at this screen can renew it afterwards. Note drafts stay for the next sign-in (only `signOut` drops
 * them); `keepalive` lets the request finish while the page leaves. */
export function expired(reason = "expired") {
  fetch("/api/v1/auth/logout", {
    method: "POST",
    headers: SESSION_HEADER,
    credentials: "same-origin",
    keepalive: true,
  }).catch(() => {});
  endSession();
  location.replace(loginUrl(reason));
}

export function authHeaders(extra = {}) {
  const value = token();
  return value ? { ...extra, Authorization: `Bearer ${value}` } : extra;
}

/** Call the API; resolves to the parsed JSON, rejects with ApiError (401 ends the session). */
export async function api(path, { method = "GET", body, form, query, signal, credentials = "omit" } = {}) {
  if (sessionStorage.getItem(TOKEN) && tokenExpiresIn() < 30000 && idleForMs() < idleTimeoutMs()) {
    await refreshSession();
  }
  const response = await send(path, { method, body, form, query, signal, credentials });
  if (response.status === 401 && response.hadToken && (await refreshSession())) {
    return parse(await send(path, { method, body, form, query, signal, credentials }));
  }
  return parse(response);
}

async function send(path, { method, body, form, query, signal, credentials }) {
  const headers = authHeaders({ Accept: "application/json" });
  let payload;
  if (form) {
    payload = new URLSearchParams(form);
    headers["Content-Type"] = "application/x-www-form-urlencoded";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  const url = query ? `${path}?${toQuery(query)}` : path;
  const response = await fetch(url, { method, headers, body: payload, signal, credentials, cache: "no-store" });
  response.hadToken = Boolean(headers.Authorization);
  return response;
}

async function parse(response) {
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 200) };
    }
  }
  if (response.status === 401 && response.hadToken) {
    // The page is leaving for the sign-in form; nothing after this call should run.
    expired();
    return new Promise(() => {});
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** {a: 1, b: [2, 3], c: null} → "a=1&b=2&b=3" */
export function toQuery(query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === null || value === undefined || value === "") continue;
    for (const one of Array.isArray(value) ? value : [value]) params.append(name, String(one));
  }
  return params.toString();
}

/** Save a file the API sends (CSV, PDF) with the session's token: fetched, then saved from a blob URL. */
export async function download(path, query, fallbackName) {
  const response = await fetch(`${path}?${toQuery(query)}`, { headers: authHeaders(), cache: "no-store" });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => ({})));
  const name = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "")?.[1] || fallbackName;
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return name;
}
