// kioku view, part 4 of 4 (same scope as view.js): two sentences side by side (kioku view
// --compare), then the page's start. For each pair of sentences, each layer-direction and
// each step both sentences have: the largest |A - B| over the cells of the chosen value,
// computed in Python from the unrounded trace (kioku.inspect.view_compare): "=" means the
// two runs gave exactly the same numbers.
const COMPARE = DATA.compare;

// white (identical) .. dark red (the largest difference of the table); any non-zero
// difference gets at least a pale shade, so that "differs" never looks like "identical"
function differenceColour(d, largest) {
  if (d === 0) return "";
  const lim = [-1, 1];
  return colour("signed", 0.15 + 0.85 * d / (largest || 1), lim);
}

function shortNumber(d) {
  return d === 0 ? "=" : (d >= 0.01 ? d.toFixed(2) : d.toExponential(0));
}

function tokenRow(name, start, length, first) {
  const row = document.createElement("tr");
  const th = document.createElement("th");
  th.textContent = name;
  row.appendChild(th);
  for (let t = 0; t < length; t++) {
    const td = document.createElement("td");
    td.className = t === first ? "tok-cell first" : "tok-cell";
    td.dataset.t = start + t;
    td.textContent = DATA.tokens[start + t];
    row.appendChild(td);
  }
  return row;
}

function drawCompare() {
  const box = $("compare"), q = $("compare-quantity").value;
  box.textContent = "";
  COMPARE.pairs.forEach((pair, k) => {
    const block = document.createElement("div");
    block.className = "pair";
    block.dataset.k = k;
    const h = document.createElement("h3");
    h.textContent = pair.first === null ? say("compare_same", {k: k + 1}) :
      say("compare_pair", {k: k + 1, t: pair.first});
    const table = document.createElement("table");
    table.className = "compare-table";
    table.appendChild(tokenRow(L.compare_row_a, pair.a, pair.length_a, pair.first));
    table.appendChild(tokenRow(L.compare_row_b, pair.b, pair.length_b, pair.first));
    let largest = 0;
    pair.diff.forEach((d) => { if (d[q]) for (const v of d[q]) largest = Math.max(largest, v); });
    groups.forEach((g, gi) => {
      const d = pair.diff[gi][q];
      if (!d) return;  // a quantity this layer's cell does not have
      const row = document.createElement("tr");
      row.dataset.g = gi;
      const th = document.createElement("th");
      th.textContent = g.label;
      row.appendChild(th);
      d.forEach((v, t) => {
        const td = document.createElement("td");
        td.className = v === 0 ? "diff same" : "diff";
        td.dataset.t = pair.a + t;
        td.dataset.value = v;
        td.textContent = shortNumber(v);
        td.title = say("compare_cell_title", {label: g.label, t, q, value: v});
        td.style.background = differenceColour(v, largest);
        td.style.color = v > 0.6 * largest ? "#fff" : "";
        row.appendChild(td);
      });
      table.appendChild(row);
    });
    block.append(h, table);
    box.appendChild(block);
  });
}

if (COMPARE) {
  $("compare-panel").hidden = false;
  const select = $("compare-quantity");
  for (const q of Q) select.add(new Option(`${q}: ${QNAME[q]}`, q));
  select.value = "h";
  select.addEventListener("change", drawCompare);
  drawCompare();
  $("compare").addEventListener("mouseover", (e) => {
    const cell = e.target.closest ? e.target.closest("[data-t]") : null;
    if (cell) showStep(Number(cell.dataset.t));
  });
}

// ---- start: the cell picked at the start (view.js chose it), the first step -------------------
pick(...startPick);
showStep(0);
document.body.dataset.ready = "1";
