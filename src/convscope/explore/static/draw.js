// The drawing pad: light strokes on a black canvas (MNIST's polarity), sent as PNG.

export class DrawingPad {
  // onChange(final): called while a stroke is drawn (final false, throttled) and when it ends (true).
  constructor(canvas, penInput, onChange) {
    this.canvas = canvas;
    this.pen = penInput;
    this.onChange = onChange;
    this.ctx = canvas.getContext("2d");
    this.drawing = false;
    this.last = null;
    this.lastSent = 0;
    this.clear(false);
    canvas.addEventListener("pointerdown", (e) => this.start(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.end(e));
    canvas.addEventListener("pointercancel", (e) => this.end(e));
    canvas.addEventListener("pointerleave", (e) => this.end(e));
  }

  point(e) {
    const r = this.canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (this.canvas.width / r.width), (e.clientY - r.top) * (this.canvas.height / r.height)];
  }

  start(e) {
    e.preventDefault();
    if (this.canvas.setPointerCapture && e.pointerId !== undefined) {
      try { this.canvas.setPointerCapture(e.pointerId); } catch (_) { /* synthetic pointer */ }
    }
    this.drawing = true;
    this.last = this.point(e);
    this.dot(this.last);
  }

  move(e) {
    if (!this.drawing) return;
    const p = this.point(e);
    const ctx = this.ctx;
    ctx.strokeStyle = "#fff"; ctx.lineWidth = Number(this.pen.value); ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(...this.last); ctx.lineTo(...p); ctx.stroke();
    this.last = p;
    const now = performance.now();
    if (now - this.lastSent > 120) { this.lastSent = now; this.onChange(false); }
  }

  end() {
    if (!this.drawing) return;
    this.drawing = false;
    this.onChange(true);
  }

  dot([x, y]) {
    const ctx = this.ctx;
    ctx.fillStyle = "#fff";
    ctx.beginPath(); ctx.arc(x, y, Number(this.pen.value) / 2, 0, 2 * Math.PI); ctx.fill();
  }

  clear(notify = true) {
    this.ctx.fillStyle = "#000";
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (notify) this.onChange(true);
  }

  blob() { return new Promise((resolve) => this.canvas.toBlob(resolve, "image/png")); }
}
