// kioku view, part 2 of 4 (after view.js, same scope): selecting a span of the text and
// ranking the cells that switch on or off inside it (LSTMVis's selection), and the mouse and
// keys that drive the page.
// ---- selecting a span and ranking the cells (LSTMVis) ------------------------------------
let selection = null;
function markSpan(start, end) {  // tokens start..end inclusive
  const w = Math.max(1, Number(rankWindow.value) || 1);
  tokenSpans.forEach((span, t) => {
    span.classList.toggle("sel", t >= start && t <= end);
    span.classList.toggle("win", (t >= start - w && t < start) || (t > end && t <= end + w));
  });
}

// Scores in counts, in the same float64 operations as kioku.inspect.view.span_scores.
function spanScores(s, start, stop, w) {
  const W = s.width, inSum = new Float64Array(W), outSum = new Float64Array(W);
  for (let t = start; t < stop; t++) for (let j = 0; j < W; j++) inSum[j] += s.counts[t * W + j];
  const lo = Math.max(0, start - w), hi = Math.min(T, stop + w);
  for (let t = lo; t < hi; t++) {
    if (t >= start && t < stop) continue;
    for (let j = 0; j < W; j++) outSum[j] += s.counts[t * W + j];
  }
  const nIn = stop - start, nOut = (start - lo) + (hi - stop);
  const scores = new Float64Array(W);
  for (let j = 0; j < W; j++) scores[j] = nOut ? inSum[j] / nIn - outSum[j] / nOut : inSum[j] / nIn;
  return scores;
}

function select(start, end) {
  start = Math.max(0, Math.min(T - 1, start));
  end = Math.max(start, Math.min(T - 1, end));
  selection = {start, end};
  $("sel-start").value = start;
  $("sel-end").value = end;
  markSpan(start, end);
  const q = rankQ.value, w = Math.max(1, Number(rankWindow.value) || 1);
  const shown = DATA.tokens.slice(start, end + 1).join(DATA.level === "char" ? "" : " ");
  const text = JSON.stringify(shown.length > 40 ? shown.slice(0, 40) + "…" : shown);
  $("sel-info").textContent = say("sel_info", {start, end, text});
  const box = $("ranking");
  box.textContent = "";
  for (const g of groups) {
    if (!g.q[q]) continue;  // a quantity this layer's cell does not have
    const s = g.q[q], scores = spanScores(s, start, end + 1, w);
    const block = document.createElement("div");
    block.className = "group";
    block.dataset.g = g.index;
    block.style.gridColumn = column(g);
    for (const way of ["on", "off"]) {
      const h = document.createElement("h3");
      h.textContent = say(way === "on" ? "rank_on" : "rank_off", {label: g.label, q});
      block.append(h, rankList(g, q, scores, rankCells(scores, way), way, s.unit));
    }
    box.appendChild(block);
  }
}
// The first TOP cells by decreasing score ("on": on inside the span, off around it) or by
// increasing score ("off": off inside, on around: a gate that closes there), ties by index:
// kioku.inspect.view.rank_cells.
function rankCells(scores, way) {
  const sign = way === "off" ? -1 : 1;
  return Array.from(scores.keys()).sort((a, b) => sign * (scores[b] - scores[a]) || (a - b)).slice(0, TOP);
}
function rankList(g, q, scores, cells, way, unit) {
  const list = document.createElement("ol");
  list.className = `rank-${way}`;
  let best = 0;
  for (const j of cells) best = Math.max(best, Math.abs(scores[j] / unit));
  for (const j of cells) {
    const score = scores[j] / unit;
    const li = document.createElement("li");
    li.dataset.cell = j;
    li.title = say("rank_li_title", {q, j, label: g.label});
    const bar = document.createElement("span");
    bar.className = score < 0 ? "bar neg" : "bar";
    bar.style.width = `${Math.round(60 * Math.abs(score) / (best || 1))}px`;
    li.append(`${L.cell} ${String(j).padStart(3)} `);
    const value = document.createElement("span");
    value.className = "score";
    value.textContent = signed(score);
    li.append(value, bar);
    li.addEventListener("click", () => pick(g.index, q, j));
    list.appendChild(li);
  }
  return list;
}
for (const id of ["sel-start", "sel-end"]) {
  $(id).addEventListener("change", () => select(Number($("sel-start").value), Number($("sel-end").value)));
}
for (const el of [rankQ, rankWindow]) {
  el.addEventListener("change", () => { if (selection) select(selection.start, selection.end); });
}

// ---- mouse: hover shows a step, drag selects a span, leaving the text shows the pinned step
let dragFrom = null, dragTo = null;
function tokenOf(e) {
  const span = e.target.closest ? e.target.closest(".tok") : null;
  return span ? Number(span.dataset.t) : null;
}
textBox.addEventListener("mouseover", (e) => {
  const t = tokenOf(e);
  if (t === null) return;
  showStep(t);
  if (dragFrom !== null) {
    dragTo = t;
    markSpan(Math.min(dragFrom, t), Math.max(dragFrom, t));
  }
});
textBox.addEventListener("mousedown", (e) => {
  const t = tokenOf(e);
  if (t === null) return;
  e.preventDefault();
  dragFrom = dragTo = t;
  markSpan(t, t);
});
document.addEventListener("mouseup", () => {
  if (dragFrom === null) return;
  const start = Math.min(dragFrom, dragTo), end = Math.max(dragFrom, dragTo);
  pinnedStep = dragTo;
  dragFrom = dragTo = null;
  select(start, end);
});
textBox.addEventListener("mouseleave", () => { if (dragFrom === null) showStep(pinnedStep); });
// the arrow keys walk the text one step at a time (outside the form fields)
document.addEventListener("keydown", (e) => {
  if (e.target.closest && e.target.closest("input, select")) return;
  const move = {ArrowLeft: -1, ArrowRight: 1}[e.key];
  if (!move) return;
  e.preventDefault();
  pinnedStep = Math.max(0, Math.min(T - 1, shownStep + move));
  showStep(pinnedStep);
  tokenSpans[pinnedStep].scrollIntoView({block: "nearest"});
});

