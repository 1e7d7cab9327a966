// Attention viewer: calls /attention-map and draws a heatmap and a bertviz-style head view.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { result: null, request: null, pngUrl: null };

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function callApi(path, options) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Error(`The service did not answer: ${error.message}`);
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body.error) message = `${body.error} (${response.status})`;
    } catch (_) { /* not JSON: keep the status line */ }
    throw new Error(message);
  }
  return response;
}

async function loadLanguages() {
  const pairs = [];
  try {
    const languages = await (await callApi("/languages")).json();
    for (const lang of languages) {
      for (const target of lang.targets) pairs.push([lang.code, target]);
    }
  } catch (error) {
    showError(error.message);
  }
  const select = $("pair");
  select.replaceChildren(...pairs.map(([s, t]) => new Option(`${s} → ${t}`, `${s}-${t}`)));
  // The sample text is English: start from an English source when there is one.
  const english = pairs.findIndex(([source]) => source === "en");
  if (english >= 0) select.selectedIndex = english;
  if (!pairs.length) {
    $("task").value = "sentiment";
    $("task").querySelector('option[value="translation"]').disabled = true;
  }
  syncTask();
}

function syncTask() {
  $("pair-label").hidden = $("task").value !== "translation";
}

function fillSelect(select, values, labels, chosen) {
  select.replaceChildren(...values.map((v, i) => new Option(labels[i], String(v))));
  select.value = String(chosen);
}

function currentMatrix() {
  const r = state.result;
  const layerIndex = r.layers.indexOf(Number($("layer").value));
  const maps = (r.task === "translation" ? r.cross_attention : r.attention)[layerIndex];
  const head = $("head").value;
  if (head !== "avg") return maps[r.heads.indexOf(Number(head))];
  return maps[0].map((row, q) => row.map((_, k) => maps.reduce((s, m) => s + m[q][k], 0) / maps.length));
}

function tokenLabels() {
  const r = state.result;
  const rows = r.task === "translation" ? r.target_tokens : r.tokens;
  const cols = r.task === "translation" ? r.source_tokens : r.tokens;
  const label = (t) => t.piece.replace(/^▁/, "") || "▁";
  return { rows: rows.map(label), cols: cols.map(label) };
}

function color(weight) {
  return `rgba(39, 87, 201, ${Math.min(1, Math.max(0.02, weight)).toFixed(3)})`;
}

function drawHeatmap(matrix, labels) {
  const table = $("heatmap");
  const head = document.createElement("thead");
  const headRow = head.insertRow();
  headRow.appendChild(document.createElement("th"));
  for (const col of labels.cols) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = col;
    headRow.appendChild(th);
  }
  const body = document.createElement("tbody");
  matrix.forEach((row, q) => {
    const tr = body.insertRow();
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = labels.rows[q];
    tr.appendChild(th);
    row.forEach((weight, k) => {
      const td = tr.insertCell();
      td.style.background = color(weight);
      td.dataset.weight = weight.toFixed(4);
      td.title = `${labels.rows[q]} → ${labels.cols[k]}: ${weight.toFixed(3)}`;
    });
  });
  table.replaceChildren(head, body);
}

function drawHeadView(matrix, labels) {
  const view = $("headview");
  const left = document.createElement("div");
  const right = document.createElement("div");
  left.className = right.className = "tokens";
  const rowHeight = 28;
  const height = Math.max(labels.rows.length, labels.cols.length) * rowHeight;
  const svgNS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("viewBox", `0 0 100 ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.style.height = `${height}px`;
  svg.setAttribute("aria-hidden", "true");
  const lines = matrix.map((row, q) => row.map((weight, k) => {
    const line = document.createElementNS(svgNS, "line");
    line.setAttribute("x1", "0");
    line.setAttribute("y1", String(q * rowHeight + rowHeight / 2));
    line.setAttribute("x2", "100");
    line.setAttribute("y2", String(k * rowHeight + rowHeight / 2));
    line.setAttribute("stroke", "#2757c9");
    line.setAttribute("stroke-width", "2");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    line.setAttribute("stroke-opacity", String(weight));
    line.dataset.query = String(q);
    svg.appendChild(line);
    return line;
  }));
  const keys = labels.cols.map((text) => {
    const span = document.createElement("span");
    span.className = "token";
    span.textContent = text;
    span.style.height = `${rowHeight - 2}px`;
    right.appendChild(span);
    return span;
  });
  const focus = (q) => {
    lines.forEach((row, r) => row.forEach((line, k) => {
      const weight = matrix[r][k];
      line.setAttribute("stroke-opacity", q === null || r === q ? String(weight) : "0");
    }));
    keys.forEach((span, k) => { span.style.background = q === null ? "" : color(matrix[q][k]); });
    left.querySelectorAll(".token").forEach((b, r) => b.classList.toggle("active", r === q));
  };
  labels.rows.forEach((text, q) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "token";
    button.textContent = text;
    button.style.height = `${rowHeight - 2}px`;
    button.setAttribute("aria-label", `attention of ${text}`);
    for (const on of ["mouseenter", "focus"]) button.addEventListener(on, () => focus(q));
    for (const off of ["mouseleave", "blur"]) button.addEventListener(off, () => focus(null));
    left.appendChild(button);
  });
  view.replaceChildren(left, svg, right);
}

async function refreshDownload() {
  const r = state.result;
  const head = $("head").value;
  const body = { ...state.request, format: "png", layers: [Number($("layer").value)] };
  if (head === "avg") body.average_heads = true; else body.heads = [Number(head)];
  const link = $("download");
  link.removeAttribute("href");
  try {
    const response = await callApi("/attention-map", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (state.pngUrl) URL.revokeObjectURL(state.pngUrl);
    state.pngUrl = URL.createObjectURL(await response.blob());
    link.href = state.pngUrl;
    link.download = `attention-${r.task}-layer${$("layer").value}-${head}.png`;
  } catch (error) {
    showError(`PNG: ${error.message}`);
  }
}

function render() {
  const r = state.result;
  const matrix = currentMatrix();
  const labels = tokenLabels();
  const what = r.task === "translation" ? "Cross-attention (target rows, source columns)"
                                        : "Encoder self-attention";
  const head = $("head").value === "avg" ? "all heads averaged" : `head ${$("head").value}`;
  $("map-title").textContent = `${what}: layer ${$("layer").value}, ${head}`;
  drawHeatmap(matrix, labels);
  drawHeadView(matrix, labels);
  refreshDownload();
}

async function submit(event) {
  event.preventDefault();
  showError("");
  const task = $("task").value;
  const request = { task, text: $("text").value };
  if (task === "translation") {
    const [source, target] = ($("pair").value || "-").split("-");
    Object.assign(request, { source, target });
  }
  $("run").disabled = true;
  $("status").textContent = "Working…";
  try {
    const response = await callApi("/attention-map", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request),
    });
    const result = await response.json();
    state.result = result;
    state.request = request;
    $("output-title").textContent = task === "translation" ? "Translation" : "Sentiment";
    $("output").textContent = task === "translation"
      ? result.translation : `${result.label} (${(result.score * 100).toFixed(1)}%)`;
    fillSelect($("layer"), result.layers, result.layers.map(String), result.layers[result.layers.length - 1]);
    fillSelect($("head"), ["avg", ...result.heads],
               ["all heads averaged", ...result.heads.map((h) => `head ${h}`)], "avg");
    $("result").hidden = false;
    $("status").textContent = "Done.";
    render();
  } catch (error) {
    $("status").textContent = "";
    showError(error.message);
  } finally {
    $("run").disabled = false;
  }
}

$("query").addEventListener("submit", submit);
$("task").addEventListener("change", syncTask);
$("layer").addEventListener("change", render);
$("head").addEventListener("change", render);
loadLanguages();
