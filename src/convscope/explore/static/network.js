// The network as a column of layers: what `convscope summary` says about each one, and its
// activation maps for the current input (one colour scale per layer, paged when wide).

import { decodeFloats, getJSON, query } from "./api.js";
import { fmt, legend, paintMap, scaleFor, thousands } from "./colors.js";

const MARK = [255, 179, 0];

function pair(v) { return Array.isArray(v) ? `${v[0]}×${v[1]}` : v === null || v === undefined ? "–" : `${v}`; }

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class Network {
  // onUnit({layer, channel, row, col} or {layer, unit}) is called when a unit is clicked.
  constructor(container, layers, onUnit) {
    this.container = container;
    this.onUnit = onUnit;
    this.cards = new Map();
    this.input = null;
    this.selected = null;
    container.replaceChildren();
    for (const row of layers) this.cards.set(row.name, this.card(row));
  }

  card(row) {
    const box = el("div", "layer");
    box.dataset.layer = row.name;
    const head = el("div", "layer-head");
    head.append(el("span", "name", row.name), el("span", "type", row.type),
      el("span", "shape", row.output_shape.join("×")));
    const meta = el("div", "layer-meta");
    const facts = [["params", thousands(row.params)], ["RF", pair(row.receptive_field)],
      ["jump", pair(row.jump)], ["MACs", thousands(row.macs)]];
    for (const [name, value] of facts) {
      meta.append(`${name} `, el("b", "", value), " · ");
    }
    const zeros = el("b", "zeros", "–");
    meta.append("zero ", zeros);
    meta.title = "RF: receptive field in input pixels; jump: input pixels between neighbouring units; "
      + "MACs: multiply-adds for one image; zero: the fraction of this layer's activations that are exactly 0";
    const maps = el("div", "maps");
    const pager = el("div", "pager");
    box.append(head, meta, maps, pager);
    this.container.append(box);
    return { row, box, maps, pager, zeros, offset: 0, pageSize: null, page: null };
  }

  update(input, pages) {
    this.input = input;
    for (const page of pages) {
      const card = this.cards.get(page.name);
      if (!card) continue;
      if (card.offset && page.ran) this.fetchPage(card, card.offset);
      else this.render(card, page);
    }
  }

  async fetchPage(card, offset) {
    const q = query({ input: this.input, layer: card.row.name, offset, count: card.pageSize });
    const answer = await getJSON(`/api/activations?${q}`);
    if (answer.input === this.input) this.render(card, answer.layers[0]);
  }

  render(card, page) {
    card.maps.replaceChildren();
    card.pager.replaceChildren();
    if (!page.ran) {
      card.box.classList.add("no-run");
      card.maps.textContent = "does not run when the model is examined";
      return;
    }
    card.page = page;
    card.offset = page.offset;
    card.pageSize = page.page_size;
    card.zeros.textContent = `${(100 * page.fraction_zero).toFixed(1)}%`;
    const data = decodeFloats(page.data);
    const scale = scaleFor(page.min, page.max);
    if (page.shape.length === 3) this.tiles(card, page, data, scale);
    else this.strip(card, page, data, scale);
    if (page.units > page.count) {
      const what = page.shape.length === 3 ? "channels" : "features";
      const prev = el("button", "", "◀");
      const next = el("button", "", "▶");
      prev.disabled = page.offset === 0;
      next.disabled = page.offset + page.count >= page.units;
      prev.addEventListener("click", () => this.fetchPage(card, Math.max(0, page.offset - card.pageSize)));
      next.addEventListener("click", () => this.fetchPage(card, page.offset + card.pageSize));
      card.pager.append(prev, next, `${what} ${page.offset}–${page.offset + page.count - 1} of ${page.units}`);
    }
    const lg = legend(scale);
    lg.title = "one colour scale for every map of this layer, for this input";
    card.pager.append(lg);
    this.mark(card);
  }

  tiles(card, page, data, scale) {
    const [, h, w] = page.shape;
    const zoom = Math.max(1, Math.min(8, Math.floor(64 / Math.max(h, w))));
    for (let k = 0; k < page.count; k++) {
      const channel = page.offset + k;
      const canvas = el("canvas", "tile");
      paintMap(canvas, data, k * h * w, h, w, scale);
      canvas.style.width = `${w * zoom}px`;
      canvas.style.height = `${h * zoom}px`;
      canvas.dataset.channel = channel;
      canvas.title = `channel ${channel}`;
      canvas.addEventListener("click", (e) => {
        const col = Math.min(w - 1, Math.max(0, Math.floor((e.offsetX / canvas.clientWidth) * w)));
        const row = Math.min(h - 1, Math.max(0, Math.floor((e.offsetY / canvas.clientHeight) * h)));
        this.onUnit({ layer: card.row.name, channel, row, col });
      });
      card.maps.append(canvas);
    }
  }

  strip(card, page, data, scale) {
    const n = page.count;
    const perRow = Math.min(n, 32);
    const rows = Math.ceil(n / perRow);
    const canvas = el("canvas", "tile feature-strip");
    canvas.width = perRow; canvas.height = rows;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(perRow, rows);
    for (let k = 0; k < n; k++) {
      const i = Math.max(0, Math.min(255, Math.round(((data[k] - scale.lo) / (scale.hi - scale.lo)) * 255))) * 3;
      img.data.set([scale.lut[i], scale.lut[i + 1], scale.lut[i + 2], 255], k * 4);
    }
    ctx.putImageData(img, 0, 0);
    const cell = Math.max(6, Math.min(14, Math.floor(320 / perRow)));
    canvas.style.width = `${perRow * cell}px`;
    canvas.style.height = `${rows * cell}px`;
    canvas.dataset.features = `${page.offset}`;
    canvas.title = "one square per feature";
    canvas.addEventListener("click", (e) => {
      const col = Math.floor((e.offsetX / canvas.clientWidth) * perRow);
      const row = Math.floor((e.offsetY / canvas.clientHeight) * rows);
      const k = row * perRow + col;
      if (k < n) this.onUnit({ layer: card.row.name, unit: page.offset + k });
    });
    const values = el("div", "hint");
    if (n <= 16) values.textContent = Array.from(data.slice(0, n), fmt).join("  ");
    card.maps.append(canvas, values);
  }

  select(unit) {
    const previous = this.selected && this.cards.get(this.selected.layer);
    this.selected = unit;
    if (previous && previous.page) this.render(previous, previous.page);
    const card = this.cards.get(unit.layer);
    if (card) this.mark(card);
  }

  // Outline the selected map and colour the selected unit's own pixel.
  mark(card) {
    const u = this.selected;
    if (!u || u.layer !== card.row.name || !card.page) return;
    if (u.channel !== undefined) {
      const tile = card.maps.querySelector(`canvas[data-channel="${u.channel}"]`);
      if (!tile) return;
      tile.classList.add("selected");
      const ctx = tile.getContext("2d");
      ctx.fillStyle = `rgb(${MARK.join(",")})`;
      ctx.fillRect(u.col, u.row, 1, 1);
    } else {
      const strip = card.maps.querySelector("canvas.feature-strip");
      const k = u.unit - card.page.offset;
      if (!strip || k < 0 || k >= card.page.count) return;
      strip.classList.add("selected");
      const ctx = strip.getContext("2d");
      ctx.fillStyle = `rgb(${MARK.join(",")})`;
      ctx.fillRect(k % strip.width, Math.floor(k / strip.width), 1, 1);
    }
  }
}
