// Colour scales: one scale per layer (shared by all its maps), sequential for
// non-negative values, diverging (blue - white - red, zero white) for signed ones.

const VIRIDIS = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
  [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]];
const DIVERGING = [[33, 102, 172], [103, 169, 207], [209, 229, 240], [247, 247, 247],
  [253, 219, 199], [239, 138, 98], [178, 24, 43]];
const HEAT = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];

function table(anchors) {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (anchors.length - 1);
    const k = Math.min(Math.floor(t), anchors.length - 2);
    const f = t - k;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = anchors[k][c] * (1 - f) + anchors[k + 1][c] * f;
  }
  return lut;
}

export const LUTS = { sequential: table(VIRIDIS), diverging: table(DIVERGING), heat: table(HEAT) };

// The scale of a layer: values in [lo, hi].
export function scaleFor(lo, hi) {
  if (lo < 0) {
    const m = Math.max(-lo, hi) || 1;
    return { signed: true, lo: -m, hi: m, lut: LUTS.diverging };
  }
  return { signed: false, lo: 0, hi: hi || 1, lut: LUTS.sequential };
}

export function lutIndex(value, scale) {
  const t = (value - scale.lo) / (scale.hi - scale.lo);
  return Math.max(0, Math.min(255, Math.round(t * 255)));
}

export function cssColor(value, scale) {
  const i = lutIndex(value, scale) * 3;
  return `rgb(${scale.lut[i]}, ${scale.lut[i + 1]}, ${scale.lut[i + 2]})`;
}

// Paint h x w values of `data` from `offset` onto a canvas of that size.
export function paintMap(canvas, data, offset, h, w, scale) {
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  for (let p = 0; p < h * w; p++) {
    const i = lutIndex(data[offset + p], scale) * 3;
    img.data[p * 4] = scale.lut[i]; img.data[p * 4 + 1] = scale.lut[i + 1];
    img.data[p * 4 + 2] = scale.lut[i + 2]; img.data[p * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

// A small legend: the colour bar of `scale` with its ends written beside it.
export function legend(scale) {
  const box = document.createElement("span");
  box.className = "legend";
  const bar = document.createElement("canvas");
  bar.width = 64; bar.height = 1;
  const ctx = bar.getContext("2d");
  for (let x = 0; x < 64; x++) {
    const i = Math.round((x / 63) * 255) * 3;
    ctx.fillStyle = `rgb(${scale.lut[i]}, ${scale.lut[i + 1]}, ${scale.lut[i + 2]})`;
    ctx.fillRect(x, 0, 1, 1);
  }
  const lo = document.createElement("span");
  lo.textContent = fmt(scale.lo);
  const hi = document.createElement("span");
  hi.textContent = fmt(scale.hi);
  box.append(lo, bar, hi);
  return box;
}

// An overlay: a map in [0, 1] (or [-1, 1] when signed) as RGBA with alpha |value| * opacity.
export function paintOverlay(canvas, map, h, w, signed, opacity) {
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  const lut = signed ? LUTS.diverging : LUTS.heat;
  for (let p = 0; p < h * w; p++) {
    const v = map[p];
    const t = signed ? (v + 1) / 2 : v;
    const i = Math.max(0, Math.min(255, Math.round(t * 255))) * 3;
    img.data[p * 4] = lut[i]; img.data[p * 4 + 1] = lut[i + 1]; img.data[p * 4 + 2] = lut[i + 2];
    img.data[p * 4 + 3] = Math.round(255 * opacity * Math.min(1, Math.abs(v) * (signed ? 1.5 : 1.2)));
  }
  ctx.putImageData(img, 0, 0);
}

export function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return (Math.round(v * 1000) / 1000).toString();
}

export function thousands(n) { return Number(n).toLocaleString("en-US"); }
