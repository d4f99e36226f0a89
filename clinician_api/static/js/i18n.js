// The page's language, strings and vocabulary, rendered by the server into #varde-config.
const config = JSON.parse(document.getElementById("varde-config").textContent);

export const lang = config.lang;
export const page = config.page;
export const kinds = config.kinds;
export const protocolLimits = config.protocol_limits;
export const patientId = config.patient_id ?? null;
export const patientLanguages = config.patient;
// The one vocabulary (vitals.vocabulary): severities worst first, alarm states in lifecycle order.
export const severities = config.severities;
export const alarmStates = config.alarm_states;
/** A severity's rank in the one order: 0 is the worst (red) and sorts first; "green" (no alarm) ranks last. */
export const severityRank = Object.fromEntries([...severities, "green"].map((severity, i) => [severity, i]));
const locale = lang === "nb" ? "nb-NO" : "en-GB";

/** The string `key` of the catalogue, with `{name}` placeholders filled from `vars`. With `vars.n === 1` the
 * singular `key_one` is used where the catalogue has one ("1 måling", not "1 målinger"). */
export function t(key, vars = {}) {
  const singular = vars.n === 1 ? config.strings[`${key}_one`] : undefined;
  const text = singular ?? config.strings[key];
  if (text === undefined) {
    throw new Error(`missing string ${key}`);
  }
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** A string that may not exist (for example a device type new to the catalogue): `fallback` when missing. */
export function maybe(key, fallback) {
  return key in config.strings ? t(key) : fallback;
}

export function kindName(kind) {
  return kinds[kind]?.name ?? kind ?? "";
}

export function formatValue(kind, value) {
  if (value === null || value === undefined) return "–";
  const decimals = kinds[kind]?.decimals ?? 1;
  return new Intl.NumberFormat(locale, { minimumFractionDigits: decimals, maximumFractionDigits: decimals }).format(value);
}

export function withUnit(kind, value) {
  const unit = kinds[kind]?.unit_display ?? "";
  return unit ? `${formatValue(kind, value)} ${unit}` : formatValue(kind, value);
}

const dateTime = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" });
const timeOnly = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit" });
const dayMonth = new Intl.DateTimeFormat(locale, { day: "numeric", month: "short" });
const weekdayDay = new Intl.DateTimeFormat(locale, { weekday: "short", day: "numeric" });

export const formats = { dateTime, timeOnly, dayMonth, weekdayDay };

export function formatTime(iso) {
  return iso ? dateTime.format(new Date(iso)) : "–";
}

/** "12 min ago" / "for 12 min siden", for ages in the queue. */
export function formatAge(iso, now = Date.now()) {
  if (!iso) return "–";
  const minutes = Math.max(0, Math.round((now - new Date(iso).getTime()) / 60000));
  if (minutes < 1) return t("age_now");
  if (minutes < 60) return t("age_minutes", { n: minutes });
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return t("age_hours", { n: hours, m: minutes % 60 });
  return t("age_days", { n: Math.floor(hours / 24) });
}
