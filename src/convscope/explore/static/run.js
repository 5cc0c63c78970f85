// The training run beside the checkpoint: curves per epoch and the test confusion matrix.

import { fmt } from "./colors.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function curves(history) {
  const W = 460, H = 250, L = 44, R = 48, T = 30, B = 34;
  const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "training curves" });
  const n = history.length;
  const x = (i) => L + (n === 1 ? (W - L - R) / 2 : (i / (n - 1)) * (W - L - R));
  const accs = history.flatMap((h) => [h.train_accuracy, h.test_accuracy]).filter((v) => typeof v === "number");
  const lo = Math.max(0, Math.floor(Math.min(...accs, 1) * 10) / 10);
  const yAcc = (v) => T + (1 - (v - lo) / (1 - lo || 1)) * (H - T - B);
  const maxLoss = Math.max(...history.map((h) => h.train_loss || 0), 1e-9);
  const yLoss = (v) => T + (1 - v / maxLoss) * (H - T - B);
  root.append(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "none", stroke: "#dde2ea" }));
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((1 - lo) * k) / 4;
    root.append(svg("text", { x: L - 6, y: yAcc(v) + 4, "text-anchor": "end" }, v.toFixed(2)));
    root.append(svg("text", { x: W - R + 6, y: yLoss((maxLoss * k) / 4) + 4 }, fmt((maxLoss * k) / 4)));
  }
  history.forEach((h, i) => root.append(svg("text", { x: x(i), y: H - B + 16, "text-anchor": "middle" }, h.epoch ?? i + 1)));
  root.append(svg("text", { x: (W - R + L) / 2, y: H - 4, "text-anchor": "middle" }, "epoch"));
  const series = [["train_accuracy", yAcc, "#9db7e6", "train accuracy"], ["test_accuracy", yAcc, "#2f6fde", "test accuracy"],
    ["train_loss", yLoss, "#e0892b", "train loss (right axis)"]];
  series.forEach(([key, y, color, label], s) => {
    const pts = history.map((h, i) => [x(i), h[key]]).filter(([, v]) => typeof v === "number");
    if (!pts.length) return;
    root.append(svg("polyline", { points: pts.map(([px, v]) => `${px},${y(v)}`).join(" "), fill: "none", stroke: color, "stroke-width": 2 }));
    for (const [px, v] of pts) root.append(svg("circle", { cx: px, cy: y(v), r: 3, fill: color }));
    root.append(svg("text", { x: L + s * 130, y: 14, fill: color }, label));
  });
  return root;
}

function confusion(matrix, names) {
  const table = document.createElement("table");
  table.className = "confusion";
  const head = document.createElement("tr");
  head.append(document.createElement("th"));
  for (const name of names) { const th = document.createElement("th"); th.textContent = name; head.append(th); }
  table.append(head);
  matrix.forEach((row, i) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = names[i];
    tr.append(th);
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((count, j) => {
      const td = document.createElement("td");
      td.textContent = count;
      const t = count / total;
      td.style.background = i === j ? `rgba(47, 111, 222, ${t})` : `rgba(198, 40, 40, ${Math.min(1, 3 * t)})`;
      if (t > 0.6) td.style.color = "#fff";
      td.title = `true ${names[i]}, predicted ${names[j]}: ${count} (${(100 * t).toFixed(1)}% of the row)`;
      tr.append(td);
    });
    table.append(tr);
  });
  return table;
}

export function renderRun(container, metrics) {
  container.replaceChildren();
  const left = document.createElement("div");
  const title = document.createElement("p");
  title.className = "hint";
  const acc = typeof metrics.test_accuracy === "number" ? `, test accuracy ${metrics.test_accuracy.toFixed(4)}` : "";
  title.textContent = `${metrics.model || ""} on ${metrics.data || "?"}${acc}`
    + (metrics.train_images ? `; ${metrics.train_images} training, ${metrics.test_images} test images` : "");
  left.append(title);
  if (Array.isArray(metrics.history) && metrics.history.length) left.append(curves(metrics.history));
  container.append(left);
  if (Array.isArray(metrics.confusion_matrix)) {
    const right = document.createElement("div");
    const caption = document.createElement("p");
    caption.className = "hint";
    caption.textContent = "confusion matrix on the test split: rows the true class, columns the prediction";
    right.append(caption, confusion(metrics.confusion_matrix, metrics.class_names
      || metrics.confusion_matrix.map((_, k) => String(k))));
    container.append(right);
  }
}
