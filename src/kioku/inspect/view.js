"use strict";
// kioku view, part 1 of 4: the data, the colour language, the text, the step tables and the
// pick. view.py joins it with view_rank.js, view_strip.js and view_compare.js into one
// script (one scope; view_compare.js ends with the page's start).
const DATA = JSON.parse(document.getElementById("kioku-data").textContent);
const TOP = 10;
const T = DATA.tokens.length;
const $ = (id) => document.getElementById(id);
// The page's words in its language (kioku.inspect.view_text): say("key", {name: value}).
const L = DATA.text;
function say(key, vars = {}) {
  return L[key].replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}
// What the strip and the comparison (view_strip.js, view_compare.js) add to a pick and a step.
const onPick = [], onStep = [];

// Little-endian int16, read byte by byte so the machine's own byte order does not matter.
function decode(b64) {
  const bin = atob(b64);
  const out = new Int16Array(bin.length >> 1);
  for (let k = 0; k < out.length; k++) {
    const u = bin.charCodeAt(2 * k) | (bin.charCodeAt(2 * k + 1) << 8);
    out[k] = u >= 32768 ? u - 65536 : u;
  }
  return out;
}

// Each layer brings its cell's quantities (an LSTM's i f g o c h, a GRU's r z n h, an sLSTM's
// i f z o c n m h), each with its label, its colour kind and the words of its scale's ends.
const groups = DATA.groups.map((g, index) => {
  const q = {}, kind = {}, name = {}, words = {};
  for (const rule of g.quantities) {
    const short = rule.short, counts = decode(g.values[short].data);
    let peak = 0;
    for (let k = 0; k < counts.length; k++) peak = Math.max(peak, Math.abs(counts[k]));
    const decimals = g.values[short].decimals;
    q[short] = {counts, width: counts.length / T, decimals, unit: Math.pow(10, decimals), peak};
    kind[short] = rule.kind;
    name[short] = rule.label;
    words[short] = rule.words;
  }
  return {label: g.label, layer: g.layer, direction: g.direction, index, q, kind, name, words,
          Q: g.quantities.map((rule) => rule.short), cell: g.cell_type,
          rows: Math.max(g.size, g.hidden_size)};
});
// every quantity of any layer, in order: what the pickers offer
const Q = [...new Set(groups.flatMap((g) => g.Q))];
const QNAME = {};
for (const g of groups) for (const q of g.Q) QNAME[q] = QNAME[q] || g.name[q];

// The exact decimal text of an integer count of 10^-decimals (no float formatting involved).
function fmt(count, decimals) {
  const sign = count < 0 ? "-" : "";
  const a = Math.abs(count);
  if (decimals === 0) return sign + a;
  const unit = Math.pow(10, decimals);
  return sign + Math.floor(a / unit) + "." + String(a % unit).padStart(decimals, "0");
}
function signed(x) {
  const text = Math.abs(x).toFixed(3);
  return (x < 0 && text !== "0.000" ? "-" : "+") + text;
}

// The colour language of kioku.inspect.colours, whose rules the page carries (DATA.colours,
// and each quantity's kind): a gate white (0, closed) .. green (1, open); a signed value
// (g, c, h, ...) blue (negative) .. white (0) .. red (positive).
const RULES = DATA.colours;
const hexRgb = (h) => [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16));
const STOPS = {gate: RULES.gate_stops.map(hexRgb), signed: RULES.signed_stops.map(hexRgb)};
const isGate = (kind) => kind === "gate";
// The ends of a scale of kind whose largest |value| is peak (kioku.inspect.colours.limits).
function limits(kind, peak) {
  if (isGate(kind)) return [0, 1];
  const b = kind === "signed" ? Math.max(1, peak) : (peak > 0 ? peak : 1);
  return [-b, b];
}
function where(value, lim) { return Math.min(1, Math.max(0, (value - lim[0]) / (lim[1] - lim[0]))); }
// The stops interpolated linearly, as kioku.inspect.colours.colour.
function colour(kind, value, lim) {
  const stops = STOPS[isGate(kind) ? "gate" : "signed"];
  const x = where(value, lim) * (stops.length - 1);
  const k = Math.min(Math.floor(x), stops.length - 2), w = x - k;
  return `rgb(${stops[k].map((a, n) => Math.round(a + (stops[k + 1][n] - a) * w)).join(", ")})`;
}
// Black text is unreadable on the darkest shades.
function ink(kind, value, lim) {
  const x = where(value, lim);
  return (isGate(kind) ? x : Math.abs(2 * x - 1)) > RULES.dark_from ? "#fff" : "";
}
function tableLimits(kind, series) { return limits(kind, series.peak / series.unit); }

function tokenLabel(t) {
  const tok = DATA.tokens[t];
  if (tok === "\n" || tok === "<eos>") return L.end_of_line;
  if (tok === " ") return L.space;
  if (tok === "\t") return L.tab;
  return JSON.stringify(tok);
}

// ---- the text --------------------------------------------------------------------------
const textBox = $("text");
const tokenSpans = [];
if (DATA.level !== "char") textBox.classList.add("word");
const unknown = new Set(DATA.unknown);
// each segment (a tagger's sentence, read alone) on its own line
const segmentStart = new Set(DATA.starts.slice(1));
DATA.tokens.forEach((tok, t) => {
  const previous = DATA.tokens[t - 1];
  if (segmentStart.has(t) && previous !== "\n" && previous !== "<eos>") {
    textBox.appendChild(document.createTextNode("\n"));
  }
  const span = document.createElement("span");
  span.className = "tok";
  span.dataset.t = t;
  const newline = tok === "\n" || tok === "<eos>";
  if (newline) span.classList.add("nl");
  if (unknown.has(t)) span.classList.add("unk");
  span.textContent = newline ? "⏎" : tok;
  textBox.appendChild(span);
  tokenSpans.push(span);
  if (newline) textBox.appendChild(document.createTextNode("\n"));
  else if (DATA.level !== "char") textBox.appendChild(document.createTextNode(" "));
});

// ---- the step tables: one per layer and direction, directions side by side ----------------
// bidirectional: one row per layer, forward | reverse; forward only: layers side by side
const ndir = Math.max(...groups.map((g) => g.direction)) + 1;
const ncol = ndir === 2 ? 2 : Math.min(groups.length, 3);
const column = (g) => (ndir === 2 ? String(g.direction + 1) : "auto");
for (const id of ["step-grid", "ranking"]) $(id).style.gridTemplateColumns = `repeat(${ncol}, minmax(0, 1fr))`;
const cellTd = [];
for (const g of groups) {
  const block = document.createElement("div");
  block.className = "group";
  block.dataset.g = g.index;
  block.style.gridColumn = column(g);
  block.innerHTML = `<h3></h3><div class="table-wrap"><table><thead><tr><th>cell</th></tr></thead><tbody></tbody></table></div>`;
  block.querySelector("h3").textContent = g.label;
  block.querySelector("thead th").textContent = L.cell;
  const head = block.querySelector("thead tr");
  for (const q of g.Q) {
    const th = document.createElement("th");
    th.textContent = q;
    th.title = g.name[q];
    head.appendChild(th);
  }
  const body = block.querySelector("tbody");
  const tds = {};
  for (const q of g.Q) tds[q] = [];
  for (let j = 0; j < g.rows; j++) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = j;
    tr.appendChild(th);
    for (const q of g.Q) {
      const td = document.createElement("td");
      if (j < g.q[q].width) {
        td.dataset.g = g.index;
        td.dataset.q = q;
        td.dataset.cell = j;
        td.title = say("td_title", {name: g.name[q], j, label: g.label});
        tds[q].push(td);
      }
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  cellTd.push(tds);
  $("step-grid").appendChild(block);
}

let shownStep = 0, pinnedStep = 0;
function showStep(t) {
  tokenSpans[shownStep].classList.remove("hover");
  shownStep = t;
  tokenSpans[t].classList.add("hover");
  $("step-title").textContent = say("step_title", {t, T, token: tokenLabel(t)});
  for (const g of groups) {
    for (const q of g.Q) {
      const s = g.q[q], kind = g.kind[q], lim = tableLimits(kind, s), base = t * s.width;
      cellTd[g.index][q].forEach((td, j) => {
        const count = s.counts[base + j];
        td.textContent = fmt(count, s.decimals);
        td.style.background = colour(kind, count / s.unit, lim);
        td.style.color = ink(kind, count / s.unit, lim);
      });
    }
  }
  const out = DATA.outputs;
  if (out && out.top) {
    const parts = out.top[t].map((k, r) => `${JSON.stringify(out.labels[k])} ${out.p[t][r].toFixed(3)}`);
    $("step-output").textContent = say("output", {kind: out.kind, top: parts.join(" · ")});
  } else if (out && out.summary) {
    $("step-output").textContent = say("class_output", {summary: out.summary});
  }
  onStep.forEach((f) => f(t));
}

// ---- colouring the text by one cell ----------------------------------------------------
const pickGroup = $("pick-group"), pickCell = $("pick-cell"), pickQ = $("pick-quantity");
const rankQ = $("rank-quantity"), rankWindow = $("rank-window");
groups.forEach((g) => pickGroup.add(new Option(g.label, g.index)));
for (const q of Q) {
  pickQ.add(new Option(`${q}: ${QNAME[q]}`, q));
  rankQ.add(new Option(`${q}: ${QNAME[q]}`, q));
}
rankQ.value = "h";
rankWindow.value = DATA.window;
let picked = null;

function pick(gi, q, j) {
  const g = groups[gi];
  if (!g.q[q]) q = "h";  // a quantity this layer's cell does not have: its hidden state
  const s = g.q[q], kind = g.kind[q];
  j = Math.max(0, Math.min(s.width - 1, j));
  if (picked) {
    const old = cellTd[picked.g][picked.q][picked.j];
    if (old) old.classList.remove("picked");
  }
  picked = {g: gi, q, j};
  cellTd[gi][q][j].classList.add("picked");
  pickGroup.value = gi;
  pickQ.value = q;
  pickCell.value = j;
  pickCell.max = s.width - 1;
  let peak = 0;
  for (let t = 0; t < T; t++) peak = Math.max(peak, Math.abs(s.counts[t * s.width + j]));
  // a gate on 0..1; a cell scaled to its own largest |c| so its pattern shows; g, h to 1
  const lim = limits(kind, peak / s.unit);
  for (let t = 0; t < T; t++) {
    const count = s.counts[t * s.width + j];
    tokenSpans[t].style.background = colour(kind, count / s.unit, lim);
    tokenSpans[t].style.color = ink(kind, count / s.unit, lim);
    tokenSpans[t].title = say("token_title", {t, q, value: fmt(count, s.decimals)});
  }
  const legend = $("legend"), words = g.words[q];
  legend.textContent = "";
  legend.append(say("legend_head", {name: g.name[q], q, j, label: g.label}));
  if (isGate(kind)) {
    const [closed, open] = RULES.gate_words;
    legend.append(`${closed} 0`, swatch(colour(kind, 0, lim)), swatch(colour(kind, 0.5, lim)),
      swatch(colour(kind, 1, lim)), `1 ${open} (${words.join(" / ")})`);
  } else {
    const b = fmt(Math.round(lim[1] * s.unit), s.decimals);
    legend.append(`${words[0]} -${b}`, swatch(colour(kind, lim[0], lim)), "…",
      swatch(colour(kind, 0, lim)), "0 …", swatch(colour(kind, lim[1], lim)), `+${b} ${words[1]}`);
  }
  onPick.forEach((f) => f(gi, q, j));
}
function swatch(bg) {
  const el = document.createElement("span");
  el.className = "swatch";
  el.style.background = bg;
  return el;
}
function pickFromControls() {
  pick(Number(pickGroup.value), pickQ.value, Number(pickCell.value) || 0);
}
pickGroup.addEventListener("change", pickFromControls);
pickCell.addEventListener("change", pickFromControls);
pickQ.addEventListener("change", pickFromControls);
$("step-grid").addEventListener("click", (e) => {
  const td = e.target.closest("td[data-q]");
  if (td) pick(Number(td.dataset.g), td.dataset.q, Number(td.dataset.cell));
});

// ---- start ---------------------------------------------------------------------------------
document.title = DATA.title;
$("title").textContent = DATA.title;
const STATIC = {"label-colour-by": "colour_by", "label-cell": "cell", "label-value": "value",
  "help": "help", "colour-help": "colour_help", "howto-title": "howto_title",
  "step-title": "step", "selection-title": "selection", "sel-info": "drag_hint",
  "label-tokens": "tokens", "label-to": "to", "label-rank-by": "rank_by",
  "label-window": "window", "score-help": "score_help", "strip-title": "strip_title",
  "compare-title": "compare_title", "compare-help": "compare_help",
  "compare-lesson": "compare_lesson", "label-compare-value": "compare_value"};
for (const [id, key] of Object.entries(STATIC)) $(id).textContent = L[key];
if (DATA.diagram) {  // one step of this model's cell, drawn (a data: URI the page holds),
  const img = document.createElement("img");  // first: it floats beside the paragraphs
  img.src = DATA.diagram;
  img.alt = L.diagram_alt;
  img.id = "cell-diagram";
  $("howto-body").appendChild(img);
}
for (const paragraph of L.howto) {
  const p = document.createElement("p");
  p.textContent = paragraph;
  $("howto-body").appendChild(p);
}
if (DATA.char_encoder) {
  $("char-note").textContent = say("char_encoder_left_out", {size: DATA.char_encoder});
  $("char-note").hidden = false;
}
const dirs = ndir === 2 ? L.bidirectional : L.forward_only;
$("summary").textContent = say("summary", {model: DATA.model, T, n: groups.length, dirs,
    unit: DATA.level === "char" ? L.summary_chars : L.summary_words}) +
  (DATA.tagger ? say("sentences", {n: DATA.starts.length}) : "") +
  (DATA.unknown.length ? say("unknown", {n: DATA.unknown.length}) : "") +
  (DATA.outputs && DATA.outputs.summary ? say("class", {summary: DATA.outputs.summary}) : "");
// start on the forward cell that varies most along the text: usually the most telling one
// (picked by the last script, view_compare.js, once the strip and the comparison are built)
let startPick;
{
  const first = groups[0].q.c ? "c" : "h";  // a GRU has no cell: its memory is h
  const s = groups[0].q[first], W = s.width;
  let best = 0, bestVar = -1;
  for (let j = 0; j < W; j++) {
    let m = 0, m2 = 0;
    for (let t = 0; t < T; t++) { const v = s.counts[t * W + j]; m += v; m2 += v * v; }
    const variance = m2 / T - (m / T) * (m / T);
    if (variance > bestVar) { bestVar = variance; best = j; }
  }
  startPick = [0, first, best];
}
