// convscope explore: wiring the input, the prediction, the network, the unit and the run.

import { getBlob, getJSON, postImage, query } from "./api.js";
import { thousands } from "./colors.js";
import { DrawingPad } from "./draw.js";
import { Network } from "./network.js";
import { Overlay } from "./overlay.js";
import { renderRun } from "./run.js";
import { UnitPanel } from "./unit.js";

const $ = (id) => document.getElementById(id);
const STAGE = 280;      // display width of the input, CSS pixels

const app = {
  model: null, input: null, predicted: null, unit: null, seq: 0, predictions: 0,
  network: null, unitPanel: null, overlay: null,
};
window.convscopeExplore = app;      // for a curious console (and the browser test)

function status(text, isError = false) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", isError);
}

function showError(err) {
  status(err.message || String(err), true);
}

// -- the prediction ------------------------------------------------------------------------
async function predict(blob, source, invert = false) {
  const seq = ++app.seq;
  const started = performance.now();
  const r = await postImage(`/api/predict?${query({ source, invert: invert ? 1 : "", activations: 1 })}`, blob);
  if (seq !== app.seq) return;                 // a newer input is on its way
  app.input = r.input;
  app.predicted = r.predicted;
  $("input-image").src = r.image;
  renderBars(r);
  app.network.update(r.input, r.activations);
  app.overlay.refresh();
  if (app.unit) app.unitPanel.show(app.unit);
  else app.drawBox(null);
  app.predictions += 1;
  document.body.dataset.predictions = String(app.predictions);
  document.body.dataset.input = r.input;
  document.body.dataset.ready = "1";
  status(`answered in ${Math.round(performance.now() - started)} ms (server ${Math.round(1000 * r.seconds)} ms)`);
}

function renderBars(r) {
  const names = app.model.class_names;
  const order = names.length <= 10 ? names.map((_, k) => k) : r.top.map((t) => t.index);
  const bars = $("bars");
  bars.replaceChildren();
  for (const k of order) {
    const p = r.probabilities[k];
    const row = document.createElement("div");
    row.className = `bar${k === r.predicted ? " top" : ""}`;
    row.dataset.class = String(k);
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = names[k];
    label.title = names[k];
    const track = document.createElement("span");
    track.className = "track";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = `${(100 * p).toFixed(1)}%`;
    row.append(label, track, value);
    bars.append(row);
  }
  bars.dataset.predicted = String(r.predicted);
}

// -- the receptive field on the input -------------------------------------------------------
app.drawBox = (box) => {
  const [, h, w] = app.model.input_shape;
  const canvas = $("box-canvas");
  const k = Math.max(1, Math.ceil(STAGE / w));
  canvas.width = w * k; canvas.height = h * k;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!box || box.whole) return;
  ctx.lineWidth = 2;
  ctx.strokeStyle = "#ffb300";
  const c = box.clipped;
  ctx.strokeRect(c.left * k + 1, c.top * k + 1, (c.right - c.left + 1) * k - 2, (c.bottom - c.top + 1) * k - 2);
  if (box.top !== c.top || box.left !== c.left || box.bottom !== c.bottom || box.right !== c.right) {
    ctx.setLineDash([4, 4]);
    ctx.strokeRect(box.left * k, box.top * k, (box.right - box.left + 1) * k, (box.bottom - box.top + 1) * k);
    ctx.setLineDash([]);
  }
  ctx.fillStyle = "#ffb300";
  ctx.fillRect((box.centre[1] + 0.5) * k - 2, (box.centre[0] + 0.5) * k - 2, 4, 4);
};

function selectUnit(unit) {
  app.unit = unit;
  app.network.select(unit);
  app.unitPanel.show(unit).catch(showError);
}

// -- inputs --------------------------------------------------------------------------------
let drawing = { busy: false, again: false };

async function sendDrawing(pad) {
  if (drawing.busy) { drawing.again = true; return; }
  drawing.busy = true;
  try {
    await predict(await pad.blob(), "drawing");
  } catch (err) {
    showError(err);
  } finally {
    drawing.busy = false;
    if (drawing.again) { drawing.again = false; sendDrawing(pad); }
  }
}

app.loadDataset = async (split, index) => {
  $("split").value = split;
  $("index").value = String(index);
  try {
    const { blob, headers } = await getBlob(`/api/dataset?${query({ split, index })}`);
    $("dataset-label").textContent = `${split} image ${index}: label ${headers.get("X-Convscope-Label")} `
      + `(${headers.get("X-Convscope-Class")})`;
    await predict(blob, "image");
  } catch (err) {
    showError(err);
  }
};

function showTab(name) {
  for (const b of document.querySelectorAll(".tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const t of document.querySelectorAll(".tab")) t.hidden = t.id !== `tab-${name}`;
}

function setupInputs(model) {
  const pad = new DrawingPad($("draw-canvas"), $("pen"), () => sendDrawing(pad));
  $("clear").addEventListener("click", () => pad.clear());
  $("draw-hint").textContent = model.digit_model
    ? "Draw a digit, light on dark. It is prepared as MNIST's digits were: the ink's box scaled into "
      + "20×20 keeping its aspect ratio, then centred by its centre of mass in 28×28."
    : `Draw light on dark; the drawing is stretched to ${model.input_shape[1]}×${model.input_shape[2]}.`;
  for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));

  const upload = (file) => {
    if (file) predict(file, "image", $("invert").checked).catch(showError);
  };
  $("file").addEventListener("change", (e) => upload(e.target.files[0]));
  const zone = $("input-panel");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); $("drop-zone").classList.add("over"); });
  zone.addEventListener("dragleave", () => $("drop-zone").classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    $("drop-zone").classList.remove("over");
    showTab("upload");
    upload(e.dataTransfer.files[0]);
  });

  const d = model.dataset;
  if (!d) {
    $("dataset-tab").disabled = true;
    $("dataset-tab").title = "no dataset: start convscope explore with --data";
    return;
  }
  const size = () => d.splits[$("split").value];
  const go = (i) => app.loadDataset($("split").value, ((i % size()) + size()) % size());
  $("index").max = String(size() - 1);
  $("prev").addEventListener("click", () => go(Number($("index").value) - 1));
  $("next").addEventListener("click", () => go(Number($("index").value) + 1));
  $("random").addEventListener("click", () => go(Math.floor(Math.random() * size())));
  $("index").addEventListener("change", () => go(Number($("index").value) || 0));
  $("split").addEventListener("change", () => go(0));
}

// -- start -----------------------------------------------------------------------------------
async function main() {
  const model = await getJSON("/api/model");
  app.model = model;
  const [c, h, w] = model.input_shape;
  $("model-title").textContent = `${model.model} · input ${c}×${h}×${w} · ${thousands(model.total_params)} parameters · `
    + `${thousands(model.total_macs)} MACs · ${model.num_classes} classes`
    + (model.dataset ? ` · data: ${model.dataset.name}` : "");
  document.title = `${model.model} · convscope explore`;
  const stage = $("stage");
  stage.style.height = `${Math.round((STAGE * h) / w)}px`;
  if (h <= 64) for (const e of [$("input-image"), $("overlay-canvas")]) e.classList.add("pixelated");
  app.network = new Network($("layers"), model.layers, selectUnit);
  app.unitPanel = new UnitPanel($("unit"), app);
  app.overlay = new Overlay(app);
  setupInputs(model);
  if (model.run) {
    $("run-panel").hidden = false;
    getJSON("/api/run").then((m) => renderRun($("run"), m)).catch(showError);
  }
  if (model.dataset) {
    showTab("dataset");
    await app.loadDataset("test", 0);
  } else {
    const blank = await new Promise((resolve) => $("draw-canvas").toBlob(resolve, "image/png"));
    await predict(blank, "drawing");
  }
}

main().catch(showError);
