// kioku view, part 3 of 4 (same scope as view.js): the strip, every gate and state of the
// picked cell over the whole text, one row per quantity, in the page's colour language (a
// gate white 0 .. green 1; a signed value blue .. white 0 .. red on limits symmetric around
// 0, c on its own largest |c|), its legend saying what the colours mean.
const strip = $("strip");
let stripColumn = null;

// The ends of the row of quantity q of cell j of group g (as pick() colours the text).
function stripLimits(g, q, j) {
  const s = g.q[q];
  let peak = 0;
  for (let t = 0; t < T; t++) peak = Math.max(peak, Math.abs(s.counts[t * s.width + j]));
  return limits(g.kind[q], peak / s.unit);
}

function drawStrip(gi, j) {
  const g = groups[gi];
  strip.textContent = "";
  stripColumn = null;
  $("strip-info").textContent = say("strip_info", {label: g.label, j});
  const head = document.createElement("tr");
  head.appendChild(document.createElement("th"));
  DATA.tokens.forEach((tok, t) => {
    const th = document.createElement("th");
    th.textContent = tok === "\n" || tok === "<eos>" ? "⏎" : tok;
    th.dataset.t = t;
    head.appendChild(th);
  });
  strip.appendChild(head);
  const gates = [], signedRows = [];
  for (const q of g.Q) {
    const s = g.q[q], kind = g.kind[q];
    if (j >= s.width) continue;  // a projected h has fewer rows than the cell
    const lim = stripLimits(g, q, j);
    const row = document.createElement("tr");
    row.dataset.q = q;
    const th = document.createElement("th");
    th.textContent = q;
    th.title = g.name[q];
    row.appendChild(th);
    for (let t = 0; t < T; t++) {
      const count = s.counts[t * s.width + j];
      const td = document.createElement("td");
      td.dataset.t = t;
      td.style.background = colour(kind, count / s.unit, lim);
      td.title = `${g.name[q]} ${q}, ${tokenLabel(t)}: ${fmt(count, s.decimals)}`;
      row.appendChild(td);
    }
    strip.appendChild(row);
    if (isGate(kind)) gates.push(q);
    else signedRows.push([q, kind, lim, s]);
  }
  const legend = $("strip-legend");
  legend.textContent = "";
  if (gates.length) {
    const lim = [0, 1], kind = "gate";
    const line = document.createElement("span");
    line.className = "legend-line";
    line.append(say("strip_gate_legend", {names: gates.join(", ")}), swatch(colour(kind, 0, lim)),
      swatch(colour(kind, 0.5, lim)), swatch(colour(kind, 1, lim)), L.strip_gate_legend_end);
    legend.appendChild(line);
  }
  for (const [q, kind, lim, s] of signedRows) {
    const bound = fmt(Math.round(lim[1] * s.unit), s.decimals);
    const line = document.createElement("span");
    line.className = "legend-line";
    line.append(say("strip_signed_legend", {names: q, bound}), swatch(colour(kind, lim[0], lim)),
      "…", swatch(colour(kind, 0, lim)), "0 …", swatch(colour(kind, lim[1], lim)),
      say("strip_signed_legend_end", {bound}));
    legend.appendChild(line);
  }
  markStripColumn(shownStep);
}

// The shown step's column framed in the strip.
function markStripColumn(t) {
  for (const row of strip.children) {
    const cells = row.children;
    if (stripColumn !== null && cells[stripColumn + 1]) cells[stripColumn + 1].classList.remove("now");
    if (cells[t + 1]) cells[t + 1].classList.add("now");
  }
  stripColumn = t;
}

onPick.push((gi, q, j) => drawStrip(gi, j));
onStep.push(markStripColumn);
strip.addEventListener("mouseover", (e) => {
  const cell = e.target.closest ? e.target.closest("[data-t]") : null;
  if (cell) showStep(Number(cell.dataset.t));
});
