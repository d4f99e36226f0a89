// The JSON API client: the bearer token lives in this tab's sessionStorage and goes out only in the
// Authorization header (never in a URL, never in a cookie), so no other site can make the browser use it.
import { lang } from "./i18n.js";

const TOKEN = "varde.token";
const EXPIRES = "varde.token_expires";
const LOGIN = "/dashboard/login";

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

export function startSession(accessToken, expiresIn) {
  sessionStorage.setItem(TOKEN, accessToken);
  sessionStorage.setItem(EXPIRES, String(Date.now() + expiresIn * 1000));
}

export function endSession() {
  for (const key of Object.keys(sessionStorage)) {
    if (key.startsWith("varde.")) sessionStorage.removeItem(key);
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
  if (token()) return true;
  const hadSession = sessionStorage.getItem(TOKEN) !== null;
  endSession();
  location.replace(loginUrl(hadSession ? "expired" : null));
  return false;
}

function expired() {
  endSession();
  location.replace(loginUrl("expired"));
}

export function authHeaders(extra = {}) {
  const value = token();
  return value ? { ...extra, Authorization: `Bearer ${value}` } : extra;
}

/** Call the API; resolves to the parsed JSON, rejects with ApiError (401 ends the session). */
export async function api(path, { method = "GET", body, form, query, signal } = {}) {
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
  const response = await fetch(url, { method, headers, body: payload, signal, credentials: "omit", cache: "no-store" });
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 200) };
    }
  }
  if (response.status === 401 && headers.Authorization) {
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
