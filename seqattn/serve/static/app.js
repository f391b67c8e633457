// The attention explorer: asks /api for the n-best outputs of one or two models and draws their attention.
"use strict";

const $ = (id) => document.getElementById(id);
const ENDPOINT = { translation: "translate", captioning: "caption", qa: "answer" };
const VERB = { translation: "Translate", captioning: "Caption", qa: "Answer" };
const PLACEHOLDER = {
  translation: "Type a sentence",
  qa: "Paste a bAbI story ending with a question, e.g.\n1 Mary moved to the bathroom.\n2 John went to the hallway.\n3 Where is Mary?",
};
const CELL = 24; // heatmap cell, px
const PANEL = 150; // caption panel, px
let models = [];
let redraws = []; // what to draw again when the pieces/words or links switch changes

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

const byName = (name) => models.find((m) => m.name === name);

async function init() {
  const info = await (await fetch("/api/models")).json();
  models = info.models;
  $("beam").max = $("nbest").max = info.max_beam;
  for (const m of models) $("model").add(new Option(`${m.name} (${m.task}, ${m.arch})`, m.name));
  $("model").addEventListener("change", chooseModel);
  $("form").addEventListener("submit", submit);
  for (const id of ["pieces", "links"]) $(id).addEventListener("change", () => redraws.forEach((draw) => draw()));
  for (const id of ["extract", "threshold"]) $(id).addEventListener("change", extractAgain);
  chooseModel();
}

function chooseModel() {
  const m = byName($("model").value);
  $("beam").value = m.beam_size;
  $("nbest").value = m.nbest;
  const compare = $("compare");
  const kept = compare.value;
  compare.length = 1;
  for (const o of models) if (o.task === m.task && o.name !== m.name) compare.add(new Option(o.name, o.name));
  compare.value = [...compare.options].some((o) => o.value === kept) ? kept : "";
  $("text").hidden = m.task === "captioning";
  $("image").hidden = m.task !== "captioning";
  $("text").placeholder = PLACEHOLDER[m.task] || "";
  $("run").textContent = VERB[m.task];
  document.querySelectorAll(".translation").forEach((label) => { label.hidden = m.task !== "translation"; });
}

// The links are the server's (seqattn.alignment): a new extraction asks again for the translations shown.
function extractAgain() {
  $("threshold").disabled = $("extract").value !== "threshold";
  if ($("results").children.length && byName($("model").value).task === "translation") $("form").requestSubmit();
}

function readImage() {
  const file = $("image").files[0];
  if (!file) return Promise.resolve("");
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error(`${file.name}: cannot read the file`));
    reader.readAsDataURL(file);
  });
}

async function post(endpoint, body) {
  const response = await fetch(`/api/${endpoint}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `the server answered HTTP ${response.status}`);
  return data;
}

async function submit(event) {
  event.preventDefault();
  showError("");
  const m = byName($("model").value);
  const body = { beam_size: Number($("beam").value), nbest: Number($("nbest").value) };
  $("run").disabled = true;
  try {
    if (m.task === "captioning") body.image = await readImage();
    else body[m.task === "qa" ? "story" : "text"] = $("text").value;
    if (m.task === "translation") Object.assign(body, { extract: $("extract").value, threshold: Number($("threshold").value) });
    const names = [m.name, $("compare").value].filter(Boolean);
    const answers = await Promise.all(names.map((name) => post(ENDPOINT[m.task], { ...body, model: name })));
    redraws = [];
    $("results").replaceChildren(...answers.map(column));
  } catch (err) {
    showError(err.message);
  } finally {
    $("run").disabled = false;
  }
}

// One model's answer: its best output, the n-best list (click to choose) and the chosen one's attention.
function column(answer, i) {
  const best = answer.hypotheses[0];
  const output = el("div", { class: "output", id: `output-${i}` });
  output.textContent = answer.task === "qa" ? `${answer.question} → ${best.text}` : best.text;
  const list = el("ol", { class: "nbest" });
  const view = el("div", { class: "attention" });
  let chosen = 0;
  const draw = () => {
    [...list.children].forEach((li, k) => li.classList.toggle("chosen", k === chosen));
    view.replaceChildren(attention(answer, answer.hypotheses[chosen]));
  };
  answer.hypotheses.forEach((hyp, k) => {
    const li = el("li", {}, hyp.text || "(empty)", el("span", { class: "score" }, `score ${hyp.score.toFixed(3)}`));
    li.addEventListener("click", () => { chosen = k; draw(); });
    list.append(li);
  });
  const download = el("button", { type: "button", class: "download" }, "Download attention JSON");
  download.addEventListener("click", () => save(cliJson(answer, answer.hypotheses[chosen]), answer.model));
  redraws.push(draw);
  draw();
  return el("section", { class: "column" }, el("h2", {}, answer.model), output, list, view, download);
}

function attention(answer, hyp) {
  if (answer.task === "qa" && answer.hops) {
    const rows = answer.story.map((s, i) => (answer.support.includes(i) ? `* ${s}` : s));
    const hops = answer.hops.map((_, k) => `hop ${k + 1}`);
    return heatmap(rows, hops, rows.map((_, i) => answer.hops.map((hop) => hop[i])));
  }
  if (!hyp.alpha) return el("p", { class: "note" }, "This model has no attention to draw.");
  if (answer.task === "captioning") return panels(answer.image, answer.grid, hyp.words.target, hyp.words.alpha);
  const m = answer.task === "translation" && !$("pieces").checked ? hyp.words : hyp;
  return heatmap(m.target, m.source, m.alpha, $("links").checked && m.links ? m.links : []);
}

// The JSON `seqattn translate/caption/answer --attention-dir` writes for this hypothesis; a translation's
// adds `words`: its source and target words and their links [source word, target word].
function cliJson(answer, hyp) {
  if (answer.task === "captioning") return { words: hyp.target, alpha: hyp.alpha };
  if (answer.task === "qa") {
    return { story: answer.story, question: answer.question, answer: hyp.text, support: answer.support, hops: answer.hops };
  }
  const words = hyp.words && { source: hyp.words.source, target: hyp.words.target, links: hyp.words.links };
  return { source: hyp.source, target: hyp.target, alpha: hyp.alpha, words };
}

function save(data, model) {
  const a = el("a", { download: `${model.replace(/\W+/g, "_")}-attention.json` });
  a.href = URL.createObjectURL(new Blob([JSON.stringify(data)], { type: "application/json" }));
  a.click();
  URL.revokeObjectURL(a.href);
}

function textWidth(labels) {
  textWidth.ctx ||= document.createElement("canvas").getContext("2d");
  textWidth.ctx.font = "13px system-ui, sans-serif";
  return Math.max(0, ...labels.map((l) => textWidth.ctx.measureText(l).width));
}

const shade = (v) => `hsl(214, 75%, ${Math.round(97 - 72 * Math.min(1, Math.max(0, v)))}%)`;
const argmax = (xs) => xs.reduce((best, x, k) => (x > xs[best] ? k : best), 0);

// alpha [rows, cols] as an SVG grid, a rect per cell, each link [col, row] outlined; hovering a cell or a
// label lights the row and column words.
function heatmap(rows, cols, alpha, links = []) {
  const left = textWidth(rows) + 10;
  const top = textWidth(cols) + 10;
  const root = svg("svg", { class: "heatmap", width: left + CELL * cols.length + 2, height: top + CELL * rows.length + 2 });
  const rowLabels = rows.map((r, i) => svg("text",
    { x: left - 6, y: top + CELL * i + CELL / 2, "text-anchor": "end", "dominant-baseline": "middle" }, r));
  const colLabels = cols.map((c, j) => {
    const x = left + CELL * j + CELL / 2, y = top - 6;
    return svg("text", { x, y, transform: `rotate(-90 ${x} ${y})`, "dominant-baseline": "middle" }, c);
  });
  const light = (i, j) => {
    rowLabels.forEach((t, k) => t.classList.toggle("hot", k === i));
    colLabels.forEach((t, k) => t.classList.toggle("hot", k === j));
  };
  alpha.forEach((row, i) => row.forEach((v, j) => {
    const cell = svg("rect", { class: "cell", x: left + CELL * j, y: top + CELL * i, width: CELL, height: CELL, fill: shade(v) });
    cell.append(svg("title", {}, `${rows[i]} → ${cols[j]}: ${v.toFixed(3)}`));
    cell.addEventListener("mouseenter", () => light(i, j));
    root.append(cell);
  }));
  for (const [j, i] of links) {
    root.append(svg("rect", { class: "link", x: left + CELL * j + 3, y: top + CELL * i + 3, width: CELL - 6, height: CELL - 6 }));
  }
  rowLabels.forEach((t, i) => t.addEventListener("mouseenter", () => light(i, argmax(alpha[i]))));
  colLabels.forEach((t, j) => t.addEventListener("mouseenter", () => light(argmax(alpha.map((r) => r[j])), j)));
  root.addEventListener("mouseleave", () => light(-1, -1));
  root.append(...rowLabels, ...colLabels);
  return root;
}

// A caption's words, each over the image as the model saw it, dimmed where the word did not look.
function panels(src, grid, words, alpha) {
  const box = el("div", { class: "captions" });
  if (!grid) box.append(el("p", { class: "note" }, "The attention is not over a square grid: no picture to draw."));
  const image = new Image();
  image.onload = () => words.forEach((word, t) => box.append(panel(image, grid, word, alpha[t])));
  image.src = src;
  return box;
}

function panel(image, grid, word, weights) {
  const canvas = el("canvas", { width: PANEL, height: PANEL });
  const ctx = canvas.getContext("2d");
  ctx.drawImage(image, 0, 0, PANEL, PANEL);
  if (grid) {
    const mask = el("canvas", { width: grid, height: grid });
    const pixels = mask.getContext("2d").createImageData(grid, grid);
    const peak = Math.max(...weights, 1e-12);
    weights.forEach((v, k) => { pixels.data[4 * k + 3] = Math.round(210 * (1 - v / peak)); });
    mask.getContext("2d").putImageData(pixels, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(mask, 0, 0, PANEL, PANEL);
  }
  const figure = el("div", { class: "caption-word", title: `${word}: peak weight ${Math.max(...weights).toFixed(3)}` });
  figure.append(canvas, el("span", {}, word));
  return figure;
}

init().catch((err) => showError(`cannot load the models: ${err.message}`));
