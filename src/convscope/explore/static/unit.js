// One unit, explained: its value, its receptive field (drawn on the input), the notes' sum
// behind its value, its top dataset images, activation maximisation and deconvnet projection.

import { getJSON, isAbort, query, runJob } from "./api.js";
import { cssColor, fmt, LUTS } from "./colors.js";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function unitParams(u) {
  return u.unit !== undefined ? { unit: u.unit } : { channel: u.channel, row: u.row, col: u.col };
}

function unitName(u) {
  return u.unit !== undefined ? `${u.layer} · feature ${u.unit}`
    : `${u.layer} · channel ${u.channel} · (${u.row}, ${u.col})`;
}

// A number in at most about five characters, for the grids (the full value is the cell's title).
function short(v) {
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 0.01) return v.toFixed(2);
  return v.toExponential(0);
}

// A table of numbers, coloured on one symmetric scale; `mark(i, j)` -> extra cell class.
function numberGrid(values, caption, { padded = null, mark = null } = {}) {
  const flat = values.flat().filter((v) => v !== null && Number.isFinite(v));
  const m = Math.max(1e-12, ...flat.map(Math.abs));
  const scale = { lo: -m, hi: m, lut: LUTS.diverging };
  const table = el("table", "num");
  values.forEach((row, i) => {
    const tr = el("tr");
    row.forEach((v, j) => {
      const td = el("td", "", v === null ? "−∞" : short(v));
      td.title = v === null ? "padding (−∞ for a max-pool)" : String(v);
      if (padded && padded[i][j]) td.classList.add("pad");
      else if (v !== null) td.style.background = cssColor(v, scale);
      if (mark && mark(i, j)) td.classList.add("argmax");
      tr.append(td);
    });
    table.append(tr);
  });
  const block = el("div", "grid-block");
  block.append(table, el("div", "caption", caption));
  return block;
}

// An image (data URL) on a canvas with a receptive-field box over it.
export function pictureWithBox(src, box, size, cls = "picture") {
  const canvas = el("canvas", cls);
  const img = new Image();
  img.onload = () => {
    const k = Math.max(1, Math.ceil(size / img.width));
    canvas.width = img.width * k; canvas.height = img.height * k;
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    if (box && !box.whole) {
      ctx.strokeStyle = "#ffb300"; ctx.lineWidth = Math.max(1, k / 2);
      const c = box.clipped;
      ctx.strokeRect(c.left * k, c.top * k, (c.right - c.left + 1) * k, (c.bottom - c.top + 1) * k);
    }
  };
  img.src = src;
  return canvas;
}

export class UnitPanel {
  constructor(container, app) {
    this.container = container;
    this.app = app;
    this.slots = {};          // job name -> {key, controller}
    this.seq = 0;
  }

  async show(unit) {
    const seq = ++this.seq;
    const input = this.app.input;
    let info;
    try {
      info = await getJSON(`/api/unit?${query({ input, layer: unit.layer, ...unitParams(unit) })}`);
    } catch (err) {
      this.container.replaceChildren(el("p", "error", err.message));
      return;
    }
    if (seq !== this.seq) return;
    this.app.drawBox(info.receptive_field);
    const parts = [el("h3", "", unitName(unit))];
    const value = el("p", "value-line");
    value.append(`${info.type} output = `, el("code", "", fmt(info.value)));
    parts.push(value, this.fieldText(info.receptive_field));
    const explained = this.explanation(info.explanation);
    if (explained) parts.push(explained);
    const jobs = el("div");
    parts.push(jobs);
    this.container.replaceChildren(...parts);
    this.container.dataset.unit = unitName(unit);
    this.jobs(jobs, unit, input);
  }

  fieldText(box) {
    const p = el("p", "hint");
    if (!box) { p.textContent = "receptive field: not known for this layer"; return p; }
    if (box.whole) { p.textContent = "receptive field: the whole image (this layer has no spatial layout)"; return p; }
    const outside = box.top < box.clipped.top || box.left < box.clipped.left
      || box.bottom > box.clipped.bottom || box.right > box.clipped.right;
    p.textContent = `receptive field: ${box.size[0]}×${box.size[1]} input pixels, rows ${box.top}..${box.bottom}, `
      + `columns ${box.left}..${box.right}${outside ? " (reaching into the padding; the dashed box)" : ""}; `
      + `neighbouring units are ${box.jump[0]} pixels apart. Drawn on the input.`;
    return p;
  }

  explanation(ex) {
    if (!ex) return null;
    const box = el("div", "explanation");
    box.dataset.kind = ex.kind;
    if (ex.kind === "conv") this.conv(box, ex);
    else if (ex.kind === "maxpool" || ex.kind === "avgpool") this.pool(box, ex);
    else if (ex.kind === "linear") this.linear(box, ex);
    else if (ex.kind === "elementwise") {
      const given = ex.inputs ? `inputs ${ex.inputs.map(fmt).join(", ")}` : `input ${fmt(ex.input)}`;
      box.append(el("h3", "", "Per position"), el("p", "sum-line", `${given} → output ${fmt(ex.value)}`));
    }
    return box;
  }

  check(ex) {
    const span = el("span", ex.matches ? "ok" : "mismatch", ex.matches ? " ✓ equal" : " ✗ differs");
    span.id = "unit-check";
    span.dataset.match = String(ex.matches);
    return span;
  }

  conv(box, ex) {
    const [first, last] = ex.input_channels;
    box.append(el("h3", "", "The sum behind the value"));
    box.append(el("p", "hint", `L[c,i,j] = Σₖ Σₐ Σᵦ I_k[i·s+a−p, j·s+b−p] · G_c,k[a,b] + bias_c. This output channel reads `
      + `input channels ${first}..${last}${ex.groups > 1 ? ` (group ${ex.group} of ${ex.groups})` : ""}; `
      + `the window covers rows ${ex.rows[0]}..${ex.rows[1]}, columns ${ex.cols[0]}..${ex.cols[1]} of the layer's input `
      + `(stride ${ex.stride[0]}, padding ${ex.padding[0]}; grey cells are zero padding).`));
    const sums = ex.channel_sums.map((s, k) => [k, s]).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
    const chooser = el("div", "channel-sums");
    const grids = el("div", "equation");
    const show = (k) => {
      for (const b of chooser.querySelectorAll("button")) b.classList.toggle("active", Number(b.dataset.k) === k);
      grids.replaceChildren(
        numberGrid(ex.window[k], `input channel ${first + k}`, { padded: ex.padded }), el("span", "op", "⊙"),
        numberGrid(ex.kernel[k], "kernel"), el("span", "op", "="),
        numberGrid(ex.products[k], `products, Σ = ${fmt(ex.channel_sums[k])}`, { padded: ex.padded }));
    };
    const shown = sums.slice(0, 24);
    for (const [k, s] of shown) {
      const b = el("button", "", `in ${first + k}: ${fmt(s)}`);
      b.dataset.k = k;
      b.addEventListener("click", () => show(k));
      chooser.append(b);
    }
    if (sums.length > shown.length) chooser.append(el("span", "hint", `… ${sums.length - shown.length} more input channels`));
    if (sums.length > 1) box.append(el("p", "hint", "each input channel's share, largest first (click one to see it):"), chooser);
    box.append(grids);
    show(shown[0][0]);
    const total = ex.channel_sums.reduce((a, b) => a + b, 0);
    const line = el("p", "sum-line");
    line.append(`Σ products over ${ex.channel_sums.length}×${ex.kernel[0].length}×${ex.kernel[0][0].length} terms = ${fmt(total)}`,
      el("br"), `+ bias ${fmt(ex.bias)} = ${fmt(ex.sum)}`, el("br"), `the layer computed ${fmt(ex.value)}`, this.check(ex));
    box.append(line);
  }

  pool(box, ex) {
    const isMax = ex.kind === "maxpool";
    box.append(el("h3", "", isMax ? "Max-pooling: the arg-max" : "Average pooling"));
    const mark = isMax ? (i, j) => i === ex.argmax_in_window[0] && j === ex.argmax_in_window[1] : null;
    box.append(numberGrid(ex.window, `window of the layer's input: rows ${ex.rows[0]}..${ex.rows[1]}, columns ${ex.cols[0]}..${ex.cols[1]}`,
      { padded: ex.padded, mark }));
    const line = el("p", "sum-line");
    if (isMax) {
      line.append(`max = ${fmt(ex.max)} at input (${ex.argmax.join(", ")}); the layer computed ${fmt(ex.value)}`,
        this.check(ex), el("br"), "backward sends this unit's gradient to that one input only (the switch).");
    } else {
      line.append(`mean = Σ / ${ex.count} = ${fmt(ex.mean)}; the layer computed ${fmt(ex.value)}`, this.check(ex));
    }
    box.append(line);
  }

  linear(box, ex) {
    box.append(el("h3", "", "The sum behind the value"));
    const line = el("p", "sum-line");
    line.append(`Σₖ wₖ·xₖ over ${ex.inputs} inputs = ${fmt(ex.positive)} (positive) ${fmt(ex.negative)} (negative)`,
      el("br"), `+ bias ${fmt(ex.bias)} = ${fmt(ex.sum)}`, el("br"), `the layer computed ${fmt(ex.value)}`, this.check(ex));
    const table = el("table", "contrib");
    const head = el("tr");
    for (const h of ["input", "x", "w", "w·x"]) head.append(el("th", "", h));
    table.append(head);
    for (const t of ex.top) {
      const tr = el("tr");
      for (const v of [t.index, fmt(t.input), fmt(t.weight), fmt(t.product)]) tr.append(el("td", "", String(v)));
      table.append(tr);
    }
    box.append(line, el("p", "hint", "the largest contributions:"), table);
  }

  // The three background jobs; run at once on small models, on request on large ones.
  jobs(container, unit, input) {
    const model = this.app.model;
    const auto = model.input_shape[1] <= 64;
    const feature = unit.unit !== undefined ? { unit: unit.unit } : { channel: unit.channel };
    const what = unit.unit !== undefined ? `feature ${unit.unit}` : `channel ${unit.channel}`;
    if (model.dataset) {
      this.slot(container, "exemplars", `Top dataset images of ${what}`,
        { kind: "exemplars", layer: unit.layer, ...feature, k: 8 }, auto, (out, r) => this.exemplars(out, r));
    }
    this.slot(container, "actmax", `Activation maximisation of ${what}`,
      { kind: "actmax", layer: unit.layer, ...feature }, auto, (out, r) => {
        const [lo, hi] = r.pixel_range;
        out.append(pictureWithBox(r.image, null, 160), " ", pictureWithBox(r.raw_image, null, 160),
          el("p", "hint", `reaches ${fmt(r.activation)}${unit.channel !== undefined ? " (the channel's mean)" : ""} `
            + `after ${r.settings.steps} steps of regularised gradient ascent. Left: contrast stretched from `
            + `pixel values ${fmt(lo)}..${fmt(hi)}; right: as the network sees it.`));
      });
    this.slot(container, "deconv", "Deconvnet projection for this input",
      { kind: "deconv", input, layer: unit.layer, ...unitParams(unit) }, true, (out, r) => {
        if (r.empty) { out.append(el("p", "hint", r.note)); return; }
        out.append(pictureWithBox(r.image, r.box, 160), el("p", "hint", r.note));
      });
  }

  slot(container, name, title, spec, auto, render) {
    const box = el("div", "job");
    box.dataset.job = name;
    const out = el("div");
    const progress = el("div", "progress");
    progress.append(el("div"));
    progress.hidden = true;
    box.append(el("h3", "", title), progress, out);
    container.append(box);
    const key = JSON.stringify(spec);
    const previous = this.slots[name];
    if (previous && previous.key !== key) previous.controller.abort();
    const start = async () => {
      const controller = new AbortController();
      this.slots[name] = { key, controller };
      progress.hidden = false;
      out.replaceChildren(el("p", "hint", "computing…"));
      try {
        const result = await runJob(spec, {
          signal: controller.signal,
          onProgress: (f) => { progress.firstChild.style.width = `${Math.round(100 * f)}%`; },
        });
        progress.hidden = true;
        out.replaceChildren();
        render(out, result);
        box.dataset.state = "done";
      } catch (err) {
        progress.hidden = true;
        if (!isAbort(err)) out.replaceChildren(el("p", "error", err.message));
      }
    };
    if (auto) start();
    else {
      const button = el("button", "", "compute");
      button.addEventListener("click", start);
      out.append(button, el("span", "hint", " (runs in the background; a large model takes a while)"));
    }
  }

  exemplars(out, r) {
    const thumbs = el("div", "thumbs");
    for (const item of r.images) {
      const fig = el("figure");
      const canvas = pictureWithBox(item.image, item.box, 72, "");
      canvas.title = `test image ${item.index}: click to use it as the input`;
      canvas.addEventListener("click", () => this.app.loadDataset("test", item.index));
      fig.append(canvas, el("figcaption", "", `${item.class} · ${fmt(item.response)}`));
      thumbs.append(fig);
    }
    const sel = r.selectivity === null ? "" : `; class selectivity ${fmt(r.selectivity)} (prefers ${r.preferred_class})`;
    out.append(thumbs, el("p", "hint", `the strongest responses (spatial max) among ${r.sample} test images${sel}`));
  }
}
