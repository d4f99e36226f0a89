// The patient app's API client. The session is an HttpOnly cookie this script never sees; every call is
// same-origin, and writes carry the app's own header (the server refuses a write without it).
import { ApiError } from "../api.js";

export { ApiError };

const LOGIN = "/min/login";

export async function api(path, { method = "GET", body, query } = {}) {
  const headers = { Accept: "application/json", "X-Varde-Min": "1" };
  let payload;
  if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  const response = await fetch(url, { method, headers, body: payload, credentials: "same-origin", cache: "no-store" });
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 200) };
    }
  }
  if (response.status === 401 && location.pathname !== LOGIN) {
    // Only someone whose session ended is told so; a first visit just gets the sign-in page.
    location.replace(response.headers.get("X-Varde-Session-Ended") ? `${LOGIN}?reason=expired` : LOGIN);
    return new Promise(() => {});
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}
