// Building DOM from data without HTML strings: text always goes in as text, never as markup.

/** h("a", {href: "/x", class: "y"}, "text", child) → an element; null/false children are skipped. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function $$(selector, root = document) {
  return [...root.querySelectorAll(selector)];
}

export function replaceChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * Bring a table body in line with `items` (rows built by `build`, each with a unique id) without rebuilding what
 * did not change: a row that stays keeps its node, and only the cells that differ are replaced. A live update then
 * cannot swallow a click in progress (pressed on a row's link, released after the update) or move the focus.
 */
export function syncRows(tbody, items, build) {
  const existing = new Map([...tbody.rows].map((tr) => [tr.id, tr]));
  const wanted = items.map((item) => {
    const fresh = build(item);
    const old = existing.get(fresh.id);
    if (!old) return fresh;
    existing.delete(fresh.id);
    patchRow(old, fresh);
    return old;
  });
  for (const gone of existing.values()) gone.remove();
  wanted.forEach((tr, i) => {
    if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] ?? null);
  });
}

function patchRow(old, fresh) {
  for (const name of old.getAttributeNames()) {
    if (!fresh.hasAttribute(name)) old.removeAttribute(name);
  }
  for (const name of fresh.getAttributeNames()) {
    if (old.getAttribute(name) !== fresh.getAttribute(name)) old.setAttribute(name, fresh.getAttribute(name));
  }
  const cells = [...fresh.children];
  cells.forEach((cell, i) => {
    const current = old.children[i];
    if (!current) old.append(cell);
    else if (!current.isEqualNode(cell)) current.replaceWith(cell);
  });
  while (old.children.length > cells.length) old.lastElementChild.remove();
}

let lastAnnouncement = "";

/** Say something through an ARIA live region (polite, or assertive for red alarms). */
export function announce(text, assertive = false) {
  const region = document.getElementById(assertive ? "live-assertive" : "live-polite");
  if (!region) return;
  // Repeating the same text would not be read again; a trailing space makes it a change.
  const message = text === lastAnnouncement ? `${text}\u00a0` : text;
  lastAnnouncement = message;
  region.append(h("p", {}, message));
  while (region.childElementCount > 5) region.firstElementChild.remove();
}

/** Focus survives re-rendering when the focused element carries data-focus-key. */
export function preserveFocus(render) {
  const active = document.activeElement;
  const key = active?.dataset?.focusKey;
  render();
  if (key) {
    const again = document.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}

/** The visual + text severity badge: colour is never the only signal. */
export const SEVERITY_ICON = { red: "▲", yellow: "◆", missed: "○", needs_review: "?", green: "✓" };

export function badge(severity, label) {
  return h(
    "span",
    { class: `badge badge-${severity}` },
    h("span", { class: "icon", "aria-hidden": "true" }, SEVERITY_ICON[severity] ?? "•"),
    " ",
    label,
  );
}
