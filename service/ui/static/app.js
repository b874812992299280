// The /ui playground. Every text from the API or a file goes in with textContent, never parsed
// as HTML; sizes and positions are set through the CSSOM, which the page's strict CSP allows.
"use strict";

const KEY_STORE = "pgenrm.apiKey";
const MIN_CANDIDATES = 2;
const $ = (id) => document.getElementById(id);

/** An element with a class, text and attributes; children appended in order. */
function el(tag, opts = {}, ...children) {
  const node = document.createElement(tag);
  if (opts.cls) node.className = opts.cls;
  if (opts.text !== undefined && opts.text !== null) node.textContent = String(opts.text);
  for (const [name, value] of Object.entries(opts.attrs || {})) node.setAttribute(name, value);
  for (const child of children) if (child) node.append(child);
  return node;
}

const fmt = (x, digits = 2) => (typeof x === "number" ? x.toFixed(digits) : "–");
const pct = (score) => `${(Math.min(10, Math.max(1, score)) - 1) / 9 * 100}%`;

// ---- the API key: this tab's sessionStorage only -------------------------------------------

function storedKey() {
  try { return sessionStorage.getItem(KEY_STORE) || ""; } catch { return ""; }
}

function keepKey(value) {
  try {
    if (value) sessionStorage.setItem(KEY_STORE, value); else sessionStorage.removeItem(KEY_STORE);
  } catch { /* storage refused: the key lives in the field only */ }
  $("key-status").textContent = value ? "A key is set for this tab." : "No key set.";
}

/** Thrown for a non-2xx answer, with the error envelope's message when there is one. */
class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = $("api-key").value.trim();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit", cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, `Could not reach the server (${error.message}).`);
  }
  let data = null;
  try { data = await response.json(); } catch { /* not JSON: keep the status line */ }
  if (response.ok && data) return data;
  const envelope = data && data.error;
  let message = envelope && typeof envelope.message === "string"
    ? envelope.message : `${response.status} ${response.statusText || "error"}`;
  if (response.status === 401 || response.status === 403) message += " (enter a key above).";
  const retry = response.headers.get("Retry-After");
  if (response.status === 429 && retry) message += ` Retry after ${retry} s.`;
  throw new ApiError(response.status, `${response.status}: ${message}`);
}

function showError(target, error) {
  target.textContent = error instanceof Error ? error.message : String(error);
  if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
    $("api-key").classList.add("needs-key");
  }
}

// ---- the form ------------------------------------------------------------------------------

const EXAMPLE_HISTORY = [
  { prompt: "How do I boil an egg?", chosen: "Boil it for 9 minutes, then cool it in cold water.",
    rejected: "Lower the egg into boiling water and cook it for about nine minutes for a firm yolk. Then move it into cold water, which stops the cooking and makes the shell easier to peel." },
  { prompt: "What's the capital of Australia?", chosen: "Canberra.",
    rejected: "The capital of Australia is Canberra. Many people guess Sydney or Melbourne, but Canberra was purpose-built as a compromise between them." },
  { prompt: "How many hours of sleep do adults need?", chosen: "Seven to nine hours a night.",
    rejected: "Most adults need between seven and nine hours of sleep each night; individual needs vary with age, health and activity level." },
];

function userMode() {
  return document.querySelector('input[name="user-mode"]:checked').value;
}

function syncUserMode() {
  const stored = userMode() === "stored";
  $("history-box").hidden = stored;
  $("cold-start-box").hidden = !stored;
  $("user-lookup").hidden = !stored;
}

function addCandidate(text = "", focus = false) {
  const item = $("candidate-template").content.firstElementChild.cloneNode(true);
  item.querySelector("textarea").value = text;
  item.querySelector(".remove").addEventListener("click", () => removeCandidate(item));
  $("candidates").append(item);
  renumberCandidates();
  if (focus) item.querySelector("textarea").focus();
}

function removeCandidate(item) {
  const next = item.nextElementSibling || item.previousElementSibling;
  item.remove();
  renumberCandidates();
  (next ? next.querySelector("textarea") : $("add-candidate")).focus();
}

function renumberCandidates() {
  const items = [...$("candidates").children];
  items.forEach((item, i) => {
    const area = item.querySelector("textarea");
    area.id = `candidate-${i}`;
    const label = item.querySelector(".cand-label");
    label.htmlFor = area.id;
    label.textContent = `Candidate ${i + 1}`;
    const remove = item.querySelector(".remove");
    remove.setAttribute("aria-label", `Remove candidate ${i + 1}`);
    remove.disabled = items.length <= MIN_CANDIDATES;
  });
}

/** The pasted history, checked enough to name the first problem in plain words. */
function parseHistory(text) {
  if (!text.trim()) {
    throw new Error('History: paste a JSON array of pairs, or [] for a user with none.');
  }
  let data;
  try { data = JSON.parse(text); } catch (error) {
    throw new Error(`History is not valid JSON: ${error.message}`);
  }
  if (!Array.isArray(data)) {
    throw new Error('History must be a JSON array of pairs, e.g. [{"prompt": "…", "chosen": "…", "rejected": "…"}].');
  }
  const answer = (v) => (typeof v === "string" && v.trim() !== "")
    || (v !== null && typeof v === "object" && typeof v.content === "string" && v.content.trim() !== "");
  data.forEach((pair, i) => {
    const where = `History pair ${i + 1}`;
    if (pair === null || typeof pair !== "object" || Array.isArray(pair)) {
      throw new Error(`${where} is not an object.`);
    }
    if (typeof pair.prompt !== "string" && !Array.isArray(pair.context)) {
      throw new Error(`${where} needs a "prompt" (a string) or a "context" (a list of messages).`);
    }
    for (const side of ["chosen", "rejected"]) {
      if (!answer(pair[side])) throw new Error(`${where} needs a non-empty "${side}" answer.`);
    }
  });
  return data;
}

/** The POST /v1/score body the form describes; throws an Error naming the first problem. */
function scoreRequest() {
  const userId = $("user-id").value.trim();
  if (!userId) throw new Error("User id: give one (any name, for a pasted history).");
  const prompt = $("prompt").value;
  if (!prompt.trim()) throw new Error("Prompt: write the request the candidates answer.");
  const candidates = [...$("candidates").querySelectorAll("textarea")].map((a) => a.value);
  const empty = candidates.findIndex((c) => !c.trim());
  if (empty >= 0) throw new Error(`Candidate ${empty + 1} is empty.`);
  const ind = Number($("ind").value);
  if (!Number.isInteger(ind) || ind < 1) throw new Error("Ind-N must be a whole number, 1 or more.");
  const body = { user_id: userId, prompt, candidates, scaling: { ind }, return_traces: "samples" };
  if (userMode() === "history") body.history = parseHistory($("history").value);
  else if ($("cold-start").checked) body.unknown_user = "cold_start";
  return body;
}

async function submitScore(event) {
  event.preventDefault();
  const errorBox = $("score-error");
  const results = $("results");
  errorBox.textContent = "";
  let body;
  try { body = scoreRequest(); } catch (error) { showError(errorBox, error); return; }
  const button = $("score-submit");
  button.disabled = true;
  results.setAttribute("aria-busy", "true");
  try {
    const response = await api("POST", "v1/score", body);
    results.replaceChildren(...renderResult(response, body.candidates));
  } catch (error) {
    showError(errorBox, error);
  } finally {
    button.disabled = false;
    results.setAttribute("aria-busy", "false");
  }
}

async function lookUpUser() {
  const status = $("user-status");
  const id = $("user-id").value.trim();
  if (!id) { status.textContent = "Type a user id first."; return; }
  status.textContent = "Looking up…";
  try {
    const user = await api("GET", `v1/users/${encodeURIComponent(id)}`);
    status.textContent = `Stored: ${user.pairs} pair${user.pairs === 1 ? "" : "s"} (version ${user.version}).`;
  } catch (error) {
    showError(status, error);
  }
}

// ---- the result ----------------------------------------------------------------------------

/** Every valid sample's overall per candidate index, with its level (ind or pro). */
function sampleOveralls(samples) {
  const out = new Map();
  for (const sample of samples || []) {
    if (!sample.chain) continue;
    sample.chain.candidates.forEach((evaluation, position) => {
      const index = sample.responses[position];
      if (index === null || index === undefined) return;
      if (!out.has(index)) out.set(index, []);
      out.get(index).push({ level: sample.level, overall: evaluation.overall });
    });
  }
  return out;
}

function strip(points, fused) {
  const values = points.map((p) => fmt(p.overall, 1)).join(", ");
  const box = el("div", { cls: "strip", attrs: { role: "img",
    "aria-label": `Sample overalls on the 1 to 10 scale: ${values || "none"}; fused score ${fmt(fused)}` } });
  for (const point of points) {
    const dot = el("span", { cls: `dot ${point.level}`, attrs: { title: `${point.level}: ${fmt(point.overall)}` } });
    dot.style.left = pct(point.overall);
    box.append(dot);
  }
  if (typeof fused === "number") {
    const mark = el("span", { cls: "fused" });
    mark.style.left = pct(fused);
    box.append(mark);
  }
  box.append(el("span", { cls: "tick lo", text: "1" }), el("span", { cls: "tick hi", text: "10" }));
  return box;
}

function bar(fraction, cls = "") {
  const track = el("span", { cls: `bar ${cls}`, attrs: { "aria-hidden": "true" } });
  const fill = el("span", { cls: "fill" });
  fill.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`;
  track.append(fill);
  return track;
}

function facts(pairs, cls = "facts") {
  const list = el("dl", { cls });
  for (const [term, value] of pairs) list.append(el("div", {}, el("dt", { text: term }), el("dd", { text: value })));
  return list;
}

function renderResult(r, texts) {
  const parts = [];
  const summary = r.traces && r.traces.summary;
  if (r.cold_start) {
    parts.push(el("p", { cls: "notice", attrs: { id: "cold-start-notice" },
      text: "Cold start: no user history informed these scores; they rest on prototypes or the model's prior alone. Read the confidence before trusting the preferred candidate." }));
  }
  if (r.degraded) parts.push(el("p", { cls: "notice", text: "Degraded: answered by the fallback backend." }));
  const conf = typeof r.confidence === "number"
    ? `${Math.round(r.confidence * 100)}% that it beats the runner-up${Math.abs(r.confidence - 0.5) < 0.1 ? " (close to a coin flip)" : ""}` : "–";
  parts.push(facts([
    ["Preferred", r.preferred === null ? "–" : `Candidate ${r.preferred + 1}`],
    ["Margin", fmt(r.margin)],
    ["Confidence", conf],
    ["Samples", `Ind ${r.samples.ind.valid}/${r.samples.ind.requested}, Pro ${r.samples.pro.valid}/${r.samples.pro.requested}`],
    ["History", `${r.history.source}, ${r.history.pairs} pair${r.history.pairs === 1 ? "" : "s"}`],
    ["Backend", `${r.backend} (${r.model})`],
  ]));

  parts.push(el("h3", { text: "Ranking" }), el("p", { cls: "hint legend",
    text: "Each strip runs from 1 to 10: a dot per sample's overall (round: Ind, square: Pro), the line at the fused score." }));
  const whys = new Map((summary ? summary.candidates : []).map((c) => [c.index, c]));
  const spread = sampleOveralls(r.traces && r.traces.samples);
  const order = [...r.scores].sort((a, b) => (a.rank ?? Infinity) - (b.rank ?? Infinity) || a.index - b.index);
  const ranking = el("ol", { cls: "ranking", attrs: { id: "ranking" } });
  for (const s of order) ranking.append(candidateCard(s, texts[s.index], whys.get(s.index), spread.get(s.index) || []));
  parts.push(ranking);

  if (summary) {
    parts.push(el("h3", { text: "Persona" }));
    const persona = summary.persona;
    parts.push(facts([["Style", persona.style || "–"], ["Content and structure", persona.content_structure || "–"], ["Values", persona.values || "–"]], "persona"));
    parts.push(el("h3", { text: "Rubric weights" }), rubric(summary.criteria));
  }
  return parts;
}

function candidateCard(s, text, trace, points) {
  const card = el("li", { cls: `cand ${s.status}`, attrs: { "data-index": String(s.index) } });
  const head = el("div", { cls: "cand-head" },
    el("span", { cls: "rank" }, el("span", { cls: "sr-only", text: "Rank " }), el("span", { cls: "rank-value", text: s.rank ?? "–" })),
    el("strong", { text: `Candidate ${s.index + 1}` }),
    el("span", { cls: "score", text: s.status === "ok" ? `${fmt(s.score)} ± ${fmt(s.score_std)}` : "not scored" }),
    el("span", { cls: "hint", text: `${s.valid_samples} valid sample${s.valid_samples === 1 ? "" : "s"}` }));
  card.append(head, el("p", { cls: "cand-text", text }));
  if (s.reason) card.append(el("p", { cls: "error", text: s.reason }));
  if (trace) card.append(el("p", { cls: "why", text: trace.why }));
  if (points.length) card.append(strip(points, s.score));
  if (trace && trace.criteria.length) {
    const table = el("table", { cls: "scores" }, el("caption", { cls: "sr-only", text: `Criterion scores of candidate ${s.index + 1}` }),
      el("thead", {}, el("tr", {}, el("th", { text: "Criterion", attrs: { scope: "col" } }), el("th", { text: "Score", attrs: { scope: "col" } }), el("th", { text: "Justification", attrs: { scope: "col" } }))));
    const rows = el("tbody");
    for (const c of trace.criteria) {
      rows.append(el("tr", {}, el("th", { text: c.criterion, attrs: { scope: "row" } }),
        el("td", { cls: "num" }, el("span", { text: fmt(c.score, 1) }), bar((c.score - 1) / 9)),
        el("td", { text: c.justification || "–" })));
    }
    table.append(rows);
    card.append(el("details", { attrs: s.rank === 1 ? { open: "" } : {} }, el("summary", { text: "Per-criterion scores" }), table));
  }
  return card;
}

function rubric(criteria) {
  const list = el("ul", { cls: "rubric", attrs: { id: "rubric" } });
  const heaviest = Math.max(1, ...criteria.map((c) => c.weight));
  for (const c of criteria) {
    const item = el("li", { cls: c.separates === false ? "flat" : "" },
      el("span", { cls: "crit-name", text: c.name }),
      el("span", { cls: "weight", text: `${fmt(c.weight, 0)}%` }),
      bar(c.weight / heaviest),
      el("span", { cls: "crit-desc", text: c.description }));
    if (c.separates === false) item.append(el("span", { cls: "flat-note", text: "did not separate the candidates" }));
    list.append(item);
  }
  return list;
}

// ---- the A/B report viewer -----------------------------------------------------------------

const STAT = /win_?rate|mean_?diff|diff$|delta|^ci|_ci|interval|wins/i;
const isRecord = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** [name, rows] for each list of objects with win-rate, difference or interval fields, at the
 * top level or one object down; the report's shape is not fixed, so nothing else is assumed. */
function reportTables(data) {
  const found = [];
  const visit = (value, name, depth) => {
    if (Array.isArray(value)) {
      if (value.length && value.every(isRecord) && value.some((row) => Object.keys(row).some((k) => STAT.test(k)))) {
        found.push([name || "results", value]);
      }
    } else if (isRecord(value) && depth < 2) {
      for (const [key, inner] of Object.entries(value)) visit(inner, name ? `${name}.${key}` : key, depth + 1);
    }
  };
  visit(data, "", 0);
  return found;
}

function cell(key, value) {
  const td = el("td");
  if (typeof value === "number") {
    td.className = "num";
    td.append(el("span", { text: Number.isInteger(value) ? value : value.toFixed(3) }));
    if (/win_?rate/i.test(key) && value >= 0 && value <= 1) td.append(bar(value));
  } else if (Array.isArray(value) && value.every((v) => typeof v === "number")) {
    td.textContent = `[${value.map((v) => v.toFixed(3)).join(", ")}]`;
  } else {
    td.textContent = value !== null && typeof value === "object" ? JSON.stringify(value) : String(value ?? "–");
  }
  return td;
}

function showReport(text) {
  const out = $("report-out");
  const errorBox = $("report-error");
  errorBox.textContent = "";
  out.replaceChildren();
  let data;
  try { data = JSON.parse(text); } catch (error) {
    errorBox.textContent = `The report is not valid JSON: ${error.message}`;
    return;
  }
  const tables = reportTables(data);
  if (tables.length && isRecord(data)) {
    const scalars = Object.entries(data).filter(([, v]) => v === null || typeof v !== "object");
    if (scalars.length) out.append(facts(scalars.map(([k, v]) => [k, String(v)])));
  }
  for (const [name, rows] of tables) {
    const keys = [...new Set(rows.flatMap((row) => Object.keys(row)))];
    const head = el("tr", {}, ...keys.map((k) => el("th", { text: k, attrs: { scope: "col" } })));
    const body = el("tbody", {}, ...rows.map((row) => el("tr", {}, ...keys.map((k) => cell(k, row[k])))));
    out.append(el("h3", { text: name }),
      el("div", { cls: "table-wrap" }, el("table", { cls: "report" }, el("thead", {}, head), body)));
  }
  out.append(el("details", { attrs: tables.length ? {} : { open: "" } }, el("summary", { text: "The whole report" }),
    el("pre", { text: JSON.stringify(data, null, 2) })));
}

// ---- wiring --------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  const key = $("api-key");
  key.value = storedKey();
  keepKey(key.value);
  key.addEventListener("input", () => { key.classList.remove("needs-key"); keepKey(key.value.trim()); });
  $("key-forget").addEventListener("click", () => { key.value = ""; keepKey(""); key.focus(); });
  for (const radio of document.querySelectorAll('input[name="user-mode"]')) radio.addEventListener("change", syncUserMode);
  syncUserMode();
  $("user-lookup").addEventListener("click", lookUpUser);
  $("history-example").addEventListener("click", () => { $("history").value = JSON.stringify(EXAMPLE_HISTORY, null, 2); });
  $("add-candidate").addEventListener("click", () => addCandidate("", true));
  for (let i = 0; i < MIN_CANDIDATES; i += 1) addCandidate();
  $("score-form").addEventListener("submit", submitScore);
  $("report-show").addEventListener("click", () => showReport($("report-text").value));
  $("report-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (file) showReport(await file.text());
  });
});
