// The patient's page: renders the gateway's snapshot (server-sent events from /api/events), in bokmål or
// English, and posts questionnaire answers. Every text from the plan goes through textContent, never innerHTML.
"use strict";

const TEXT = {
  nb: {
    title: "Min plan",
    skip: "Gå til siste måling",
    latest: "Siste måling",
    today: "I dag",
    questionnaires: "Spørsmål om hvordan du har det",
    contacts: "Ring oss",
    noMeasurement: "Ingen måling ennå.",
    noPlan: "Planen din er ikke kommet til boksen ennå. Ring sykepleieren hvis du er usikker.",
    planProblem: "Planen kunne ikke oppdateres. Den forrige planen gjelder fortsatt.",
    measuredAt: (date, time) => (date ? `Målt ${date} kl. ${time}` : `Målt i dag kl. ${time}`),
    zone: {
      green: "Grønn – innenfor planen din",
      yellow: "Gul – følg rådet under",
      red: "Rød – følg rådet under nå",
      none: "Planen din har ingen grenser for denne målingen",
    },
    state: { done: "Utført", upcoming: "Senere i dag", reminder: "Snart frist", missed: "Ikke utført" },
    doneAt: (t) => `Utført kl. ${t}`,
    before: (t) => `før kl. ${t}`,
    nothingToday: "Ingenting å måle i dag.",
    remindMeasure: (name, t) => `Husk å måle ${name.toLowerCase()} før kl. ${t}.`,
    remindAnswer: (name, t) => `Husk å svare på «${name}» før kl. ${t}.`,
    send: "Send svarene",
    unanswered: (n) => (n === 1 ? "Svar på ett spørsmål til før du sender." : `Svar på ${n} spørsmål til før du sender.`),
    saved: (score) => `Takk! Svarene er lagret. Poengsum: ${score}.`,
    lastAnswer: (time, score) => `Sist besvart i dag kl. ${time} (poengsum ${score}).`,
    sendFailed: "Svarene ble ikke lagret. Prøv igjen.",
    online: "Tilkoblet.",
    offline: (n) =>
      n > 0
        ? `Ingen internettforbindelse nå. ${n} måling(er) og svar er lagret i boksen og sendes senere.`
        : "Ingen internettforbindelse nå. Målingene lagres i boksen og sendes senere.",
    lostBox: "Skjermen har mistet kontakten med boksen. Prøver igjen …",
    call: (name, role) => `${name} (${role})`,
    measureAgain: "Mål på nytt",
  },
  en: {
    title: "My plan",
    skip: "Skip to the latest measurement",
    latest: "Latest measurement",
    today: "Today",
    questionnaires: "Questions about how you feel",
    contacts: "Call us",
    noMeasurement: "No measurement yet.",
    noPlan: "Your plan has not reached the box yet. Call the nurse if you are unsure.",
    planProblem: "Your plan could not be updated. The previous plan still applies.",
    measuredAt: (date, time) => (date ? `Measured ${date} at ${time}` : `Measured today at ${time}`),
    zone: {
      green: "Green – within your plan",
      yellow: "Yellow – follow the advice below",
      red: "Red – follow the advice below now",
      none: "Your plan sets no limits for this measurement",
    },
    state: { done: "Done", upcoming: "Later today", reminder: "Due soon", missed: "Not done" },
    doneAt: (t) => `Done at ${t}`,
    before: (t) => `before ${t}`,
    nothingToday: "Nothing to measure today.",
    remindMeasure: (name, t) => `Remember to measure your ${name.toLowerCase()} before ${t}.`,
    remindAnswer: (name, t) => `Remember to answer “${name}” before ${t}.`,
    send: "Send the answers",
    unanswered: (n) => (n === 1 ? "Answer one more question before sending." : `Answer ${n} more questions before sending.`),
    saved: (score) => `Thank you! Your answers are saved. Score: ${score}.`,
    lastAnswer: (time, score) => `Last answered today at ${time} (score ${score}).`,
    sendFailed: "The answers were not saved. Please try again.",
    online: "Connected.",
    offline: (n) =>
      n > 0
        ? `No internet connection now. ${n} measurement(s) and answers are kept in the box and sent later.`
        : "No internet connection now. Your measurements are kept in the box and sent later.",
    lostBox: "The screen has lost contact with the box. Trying again …",
    call: (name, role) => `${name} (${role})`,
    measureAgain: "Please measure again",
  },
};

const view = {
  state: null,
  lang: null,
  rendered: {},
  chosen: {}, // questionnaire id → {question id → option id}
  results: {}, // questionnaire id → {kind: "saved"|"error"|"incomplete", text}
  streamOk: true,
  sounded: new Set(),
  audio: null,
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function t() {
  return TEXT[view.lang] || TEXT.nb;
}

function number(text) {
  return view.lang === "nb" ? text.replace(".", ",") : text;
}

// Replace a section's content only when what it shows changed, so focus and half-filled answers survive updates.
function renderInto(id, key, build) {
  const memo = `${view.lang}|${key}`;
  if (view.rendered[id] === memo) return;
  view.rendered[id] = memo;
  const target = document.getElementById(id);
  target.replaceChildren(...build());
}

function renderStatic() {
  document.documentElement.lang = view.lang;
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t()[node.dataset.t];
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === view.lang));
  }
}

function renderConnection(s) {
  const node = document.getElementById("connection");
  const pending = s.pending.readings + s.pending.questionnaires;
  let text = s.connected ? t().online : t().offline(pending);
  if (!view.streamOk) text = t().lostBox;
  node.textContent = text;
  node.classList.toggle("offline", !s.connected || !view.streamOk);
}

function renderLatest(s) {
  renderInto("latest-body", JSON.stringify([s.latest, s.today]), () => {
    const m = s.latest;
    if (!m) return [el("p", {}, t().noMeasurement)];
    const zone = m.zone || "none";
    const lang = view.lang;
    return [
      el(
        "div",
        { class: `zone zone-${zone}`, id: "latest-zone", "data-zone": zone },
        el("p", { class: "zone-label" }, t().zone[zone]),
        el(
          "p",
          { class: "values" },
          m.parts.map((p) => el("span", {}, el("small", {}, lang === "nb" ? p.name_nb : p.name_en), `${number(p.value)} ${p.unit}`)),
        ),
        m.advice ? el("p", { class: "advice", id: "latest-advice" }, m.advice[lang]) : null,
        el("p", { class: "when" }, t().measuredAt(m.date === s.today ? null : m.date, m.time)),
      ),
    ];
  });
}

function itemName(item) {
  return view.lang === "nb" ? item.name_nb : item.name_en;
}

function renderScheduleNotices(s) {
  const notices = s.schedule_notices || [];
  renderInto("schedule-notices", JSON.stringify(notices), () =>
    notices.map((n) => el("p", { class: "schedule-notice", "data-kind": n.kind, "data-zone": n.zone }, view.lang === "nb" ? n.nb : n.en)),
  );
}

function renderSchedule(s) {
  renderInto("schedule", JSON.stringify(s.schedule), () => {
    if (!s.plan) return [];
    if (!s.schedule.length) return [el("li", {}, t().nothingToday)];
    return s.schedule.map((item) =>
      el(
        "li",
        { "data-item": item.id, "data-state": item.state },
        el("span", {}, `${itemName(item)} `, el("span", {}, t().before(item.deadline))),
        el("span", { class: `state state-${item.state}` }, item.state === "done" && item.done_at ? t().doneAt(item.done_at) : t().state[item.state]),
      ),
    );
  });
}

function renderReminders(s) {
  const due = s.schedule.filter((item) => item.state === "reminder");
  renderInto("reminders", JSON.stringify(due), () =>
    due.map((item) =>
      el(
        "p",
        { class: "reminder", "data-item": item.id },
        item.what === "measurement" ? t().remindMeasure(itemName(item), item.deadline) : t().remindAnswer(itemName(item), item.deadline),
      ),
    ),
  );
  const fresh = due.filter((item) => !view.sounded.has(item.id));
  if (fresh.length) {
    view.sounded = new Set([...view.sounded].filter((id) => id.startsWith(s.today)));
    for (const item of fresh) view.sounded.add(item.id);
    try {
      localStorage.setItem("varde.sounded", JSON.stringify([...view.sounded]));
    } catch (_) {
      // private mode: the reminder may sound again after a reload
    }
    chime();
  }
}

// A short two-tone chime generated with WebAudio (no sound files). Browsers allow audio after a key or click.
function chime() {
  try {
    view.audio = view.audio || new AudioContext();
    const ctx = view.audio;
    if (ctx.state === "suspended") ctx.resume();
    const start = ctx.currentTime + 0.05;
    [660, 880].forEach((freq, i) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, start + i * 0.35);
      gain.gain.exponentialRampToValueAtTime(0.4, start + i * 0.35 + 0.03);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + i * 0.35 + 0.3);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start + i * 0.35);
      osc.stop(start + i * 0.35 + 0.32);
    });
    document.body.dataset.chimes = String(Number(document.body.dataset.chimes || 0) + 1);
  } catch (_) {
    // no audio device: the written reminder is still there
  }
}

// The cloud asked for a repeat of a reading that was out of line; it goes away when the patient has measured again.
function renderRepeat(s) {
  const asks = s.repeat || [];
  renderInto("repeat", JSON.stringify(asks), () =>
    asks.map((ask) =>
      el(
        "div",
        { class: "repeat", "data-kind": ask.kind },
        el("h2", {}, t().measureAgain),
        el("p", {}, ask[view.lang]),
      ),
    ),
  );
}

function renderReceipt(s) {
  renderInto("receipt", JSON.stringify(s.receipt), () =>
    s.receipt ? [el("p", { class: "receipt", id: "receipt-text" }, s.receipt[view.lang])] : [],
  );
}

function renderMessageNotice(s) {
  renderInto("message-notice", JSON.stringify(s.message), () =>
    s.message ? [el("p", { class: "receipt message", id: "message-text" }, s.message[view.lang])] : [],
  );
}

function renderQuestionnaires(s) {
  const shape = JSON.stringify([s.plan && s.plan.version, s.questionnaires, view.results]);
  renderInto("questionnaire-list", shape, () => s.questionnaires.map((q) => questionnaireForm(q, s)));
}

function questionnaireForm(q, s) {
  const lang = view.lang;
  const chosen = (view.chosen[q.id] = view.chosen[q.id] || {});
  const title = lang === "nb" ? q.title_nb : q.title_en;
  const result = view.results[q.id];
  const last = q.last && q.last.date === s.today ? el("p", {}, t().lastAnswer(q.last.time, q.last.score)) : null;
  const questions = q.questions.map((question) =>
    el(
      "fieldset",
      { "data-question": question.id },
      el("legend", {}, question[lang]),
      el(
        "div",
        { class: "options" },
        question.options.map((option) =>
          el(
            "button",
            {
              type: "button",
              "data-option": option.id,
              "aria-pressed": String(chosen[question.id] === option.id),
              onclick: (event) => {
                chosen[question.id] = option.id;
                const group = event.currentTarget.parentElement;
                for (const b of group.querySelectorAll("button")) {
                  b.setAttribute("aria-pressed", String(b.dataset.option === option.id));
                }
              },
            },
            option[lang],
          ),
        ),
      ),
    ),
  );
  return el(
    "div",
    { class: "questionnaire", "data-questionnaire": q.id },
    el("h3", {}, title),
    last,
    questions,
    el("button", { type: "button", class: "primary", "data-send": q.id, onclick: () => send(q) }, t().send),
    el(
      "div",
      { class: "result", role: "status", "aria-live": "polite", id: `result-${q.id}` },
      result ? resultBody(result) : null,
    ),
  );
}

function resultBody(result) {
  if (result.kind === "saved") {
    return [
      el("p", { class: `zone zone-${result.zone}` }, el("span", { class: "zone-label" }, t().zone[result.zone]), el("br"), t().saved(result.score)),
      result.advice ? el("p", { class: "advice" }, result.advice[view.lang]) : null,
    ];
  }
  if (result.kind === "incomplete") return [el("p", {}, t().unanswered(result.missing))];
  return [el("p", {}, t().sendFailed)];
}

async function send(q) {
  const chosen = view.chosen[q.id] || {};
  const missing = q.questions.filter((question) => !chosen[question.id]).length;
  if (missing) {
    view.results[q.id] = { kind: "incomplete", missing };
    render();
    return;
  }
  try {
    const response = await fetch(`/api/questionnaires/${encodeURIComponent(q.id)}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ answers: chosen }),
    });
    if (!response.ok) throw new Error(String(response.status));
    const saved = await response.json();
    const zoneAdvice = await adviceFor(saved.questionnaire);
    view.results[q.id] = { kind: "saved", zone: saved.zone, score: saved.score, advice: zoneAdvice };
    view.chosen[q.id] = {};
  } catch (_) {
    view.results[q.id] = { kind: "error" };
  }
  render();
  const status = document.getElementById(`result-${q.id}`);
  if (status) {
    status.setAttribute("tabindex", "-1");
    status.focus();
  }
}

async function adviceFor(questionnaireId) {
  try {
    const response = await fetch("/api/state");
    const s = await response.json();
    view.state = s;
    const q = s.questionnaires.find((x) => x.id === questionnaireId);
    return q && q.last ? q.last.advice : null;
  } catch (_) {
    return null;
  }
}

function renderContacts(s) {
  renderInto("contact-list", JSON.stringify(s.plan && s.plan.contacts), () =>
    (s.plan ? s.plan.contacts : []).map((c) =>
      el("li", {}, el("a", { href: `tel:${c.phone.replace(/ /g, "")}` }, c.phone), " ", t().call(c.name, c.role)),
    ),
  );
}

function renderNote(s) {
  const note = document.getElementById("plan-note");
  note.textContent = !s.plan ? t().noPlan : s.plan_problem ? t().planProblem : "";
}

function render() {
  const s = view.state;
  if (!s) return;
  if (!view.lang) view.lang = storedLang() || s.language || "nb";
  renderStatic();
  renderConnection(s);
  renderRepeat(s);
  renderReceipt(s);
  renderMessageNotice(s);
  renderReminders(s);
  renderLatest(s);
  renderScheduleNotices(s);
  renderSchedule(s);
  renderQuestionnaires(s);
  renderContacts(s);
  renderNote(s);
  document.body.dataset.ready = "true";
}

function storedLang() {
  try {
    const lang = localStorage.getItem("varde.lang");
    return lang === "nb" || lang === "en" ? lang : null;
  } catch (_) {
    return null;
  }
}

function setLang(lang) {
  view.lang = lang;
  try {
    localStorage.setItem("varde.lang", lang);
  } catch (_) {
    // private mode: the choice lasts until the page reloads
  }
  render();
}

function connect() {
  const source = new EventSource("/api/events");
  source.addEventListener("state", (event) => {
    view.state = JSON.parse(event.data);
    view.streamOk = true;
    render();
  });
  source.onerror = () => {
    view.streamOk = false;
    render();
  };
}

document.addEventListener("DOMContentLoaded", () => {
  try {
    view.sounded = new Set(JSON.parse(localStorage.getItem("varde.sounded") || "[]"));
  } catch (_) {
    view.sounded = new Set();
  }
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => setLang(button.dataset.lang));
  }
  // Audio may only start after a gesture: wake it on the first key or click, so later reminders can sound.
  const unlock = () => {
    try {
      view.audio = view.audio || new AudioContext();
      if (view.audio.state === "suspended") view.audio.resume();
    } catch (_) {
      // no audio device
    }
  };
  document.addEventListener("keydown", unlock, { once: true });
  document.addEventListener("click", unlock, { once: true });
  connect();
});
