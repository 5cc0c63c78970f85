// Saliency overlays on the input: one method at a time, for the predicted class or a chosen one.

import { decodeFloats, isAbort, runJob } from "./api.js";
import { paintOverlay } from "./colors.js";

const LABELS = {
  gradient: "gradient |∂score/∂x|", guided_backprop: "guided backprop", smoothgrad: "SmoothGrad",
  integrated_gradients: "integrated gradients", grad_cam: "Grad-CAM", occlusion: "occlusion (drop in p)",
};

export class Overlay {
  constructor(app) {
    this.app = app;
    this.method = document.getElementById("overlay-method");
    this.klass = document.getElementById("overlay-class");
    this.layer = document.getElementById("overlay-layer");
    this.layerLabel = document.getElementById("overlay-layer-label");
    this.opacity = document.getElementById("overlay-opacity");
    this.canvas = document.getElementById("overlay-canvas");
    this.progress = document.getElementById("overlay-progress");
    this.status = document.getElementById("overlay-status");
    this.controller = null;
    this.result = null;
    const model = app.model;
    model.class_names.forEach((name, k) => this.klass.append(new Option(`${k}: ${name}`, String(k))));
    for (const name of model.grad_cam_layers) this.layer.append(new Option(name, name));
    if (model.grad_cam_default) this.layer.value = model.grad_cam_default;
    if (!model.grad_cam_layers.length) this.method.querySelector('option[value="grad_cam"]').disabled = true;
    for (const control of [this.method, this.klass, this.layer]) control.addEventListener("change", () => this.refresh());
    this.opacity.addEventListener("input", () => this.paint());
  }

  setState(state, text) {
    this.status.dataset.state = state;
    this.status.textContent = text;
  }

  async refresh() {
    const method = this.method.value;
    this.layerLabel.hidden = method !== "grad_cam";
    if (this.controller) this.controller.abort();
    this.controller = null;
    if (!method || !this.app.input) {
      this.result = null;
      this.paint();
      this.progress.hidden = true;
      this.setState("off", "");
      return;
    }
    const spec = { kind: "saliency", input: this.app.input, method,
      target: this.klass.value === "" ? null : Number(this.klass.value) };
    if (method === "grad_cam") spec.layer = this.layer.value;
    const controller = new AbortController();
    this.controller = controller;
    this.progress.hidden = false;
    this.progress.firstChild.style.width = "0%";
    this.setState("running", `computing ${LABELS[method]}…`);
    try {
      const result = await runJob(spec, {
        signal: controller.signal,
        onProgress: (f) => { this.progress.firstChild.style.width = `${Math.round(100 * f)}%`; },
      });
      if (controller !== this.controller) return;
      this.result = result;
      this.paint();
      this.progress.hidden = true;
      const legend = result.signed ? "red: for the class, blue: against" : "bright: most important";
      this.setState("done", `${LABELS[method]} for class ${result.class}${result.note ? `: ${result.note}` : ""} (${legend})`);
    } catch (err) {
      if (isAbort(err)) return;
      this.progress.hidden = true;
      this.setState("error", err.message);
    }
  }

  paint() {
    const ctx = this.canvas.getContext("2d");
    if (!this.result) { ctx.clearRect(0, 0, this.canvas.width, this.canvas.height); return; }
    const [h, w] = this.result.shape;
    paintOverlay(this.canvas, decodeFloats(this.result.map), h, w, this.result.signed, Number(this.opacity.value) / 100);
  }
}
