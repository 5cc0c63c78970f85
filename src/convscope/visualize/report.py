"""One self-contained HTML page for a checkpoint: training curves, confusion matrix and every
§3 technique, with the images embedded as base64 PNGs so the file opens offline. The
``faithfulness`` technique is the section "Attribution methods and faithfulness": the maps of
the chosen methods (``--methods``; by default five cheap ones and a random map), and how
faithful each is (a table and the deletion, insertion and ROAD curves)."""

from __future__ import annotations

import base64
import dataclasses
import html
import json
from pathlib import Path

import numpy as np

from ..io import atomic_write_text, jsonable
from . import render
from .context import Context, Output
from .techniques import TECHNIQUES

__all__ = ["write_report", "report_html"]

_MAX_CONFUSION = 50            # classes a confusion-matrix figure can show legibly
_HEADINGS = {"faithfulness": "Attribution methods and faithfulness"}    # section id -> heading, where they differ

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
img{max-width:100%;margin:.4em 0}pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.8em}
.caption{color:#555}.error{color:#a00}nav a{margin-right:1em}"""


def _img(fig, alt: str) -> str:
    data = base64.b64encode(render.png_bytes(fig)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _training_section(ctx: Context, metrics: dict | None) -> Output:
    figures, numbers = {}, {}
    history = (metrics or {}).get("history") or []
    if history:
        epochs = [h["epoch"] for h in history]
        figures["loss"] = render.line_chart({"train loss": (epochs, [h["train_loss"] for h in history])},
                                            "training loss", "epoch", "loss")
        figures["accuracy"] = render.line_chart(
            {"train": (epochs, [h["train_accuracy"] for h in history]),
             "test": (epochs, [h["test_accuracy"] for h in history])}, "accuracy", "epoch", "accuracy")
        numbers["history"] = history
    if not ctx.has_data:
        return Output(figures, numbers, "Training curves (no dataset given, so no confusion matrix).")
    if not ctx.same_classes():
        return Output(figures, numbers, "Training curves (the dataset's classes are not the model's, so no "
                                        "confusion matrix).")
    names = ctx.clf.class_names
    accuracy, confusion = _test_confusion(ctx)
    numbers["test_accuracy"] = accuracy
    if len(names) > _MAX_CONFUSION:
        return Output(figures, numbers, f"Training curves and the test accuracy, {accuracy:.4f} ({len(names)} "
                                        f"classes: too many for a confusion matrix figure).")
    figures["confusion"] = render.matrix_plot(confusion, names, names,
                                              f"confusion matrix (test accuracy {accuracy:.4f})",
                                              "predicted", "true")
    return Output(figures, numbers, "Training curves and the confusion matrix on the test split.")


def _test_confusion(ctx: Context) -> tuple[float, np.ndarray]:
    """(accuracy, confusion matrix) of the classifier on the test split, a chunk of images at a time."""
    from ..training.metrics import confusion_matrix
    from .core import batch_limit, batches
    data = ctx.dataset("the confusion matrix")
    size = batch_limit(ctx.clf.input_shape, 500, forward_only=True)
    predicted = np.concatenate([ctx.clf.logits(data.test_images[rows], batch_size=size).argmax(axis=1)
                                for rows in batches(len(data.test_images), max(size, 64))])
    labels = data.test_labels
    return float((predicted == labels).mean()), confusion_matrix(labels, predicted, ctx.clf.num_classes)


def report_html(title: str, sections: list[tuple[str, Output | str]]) -> str:
    """The page: one section per (name, Output) — or (name, error message) for a failed one; the
    name is the section's id and its heading (unless ``_HEADINGS`` gives a longer one)."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_STYLE}</style></head><body><h1>convscope report: {html.escape(title)}</h1><nav>"]
    parts += [f'<a href="#{name}">{html.escape(_HEADINGS.get(name, name))}</a>' for name, _ in sections]
    parts.append("</nav>")
    for name, out in sections:
        parts.append(f'<h2 id="{name}">{html.escape(_HEADINGS.get(name, name))}</h2>')
        if isinstance(out, str):
            parts.append(f'<p class="error">{html.escape(out)}</p>')
            continue
        parts.append(f'<p class="caption">{html.escape(out.caption)}</p>')
        parts += [_img(fig, f"{name}: {stem}") for stem, fig in out.figures.items()]
        text = json.dumps(jsonable(out.numbers), indent=1)
        if len(text) > 4000:
            text = text[:4000] + "\n..."
        parts.append(f"<details><summary>numbers</summary><pre>{html.escape(text)}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(ctx: Context, out_dir, metrics: dict | None = None, title: str = "model") -> Path:
    """Run every technique on ``ctx`` and write ``out_dir/report.html``; returns its path.

    A technique that cannot run on this model (e.g. no fully-connected layer for the
    neighbours' default feature space) gets its error message in its section.
    """
    from ..progress import Progress
    sections: list[tuple[str, Output | str]] = []
    bar = Progress(len(TECHNIQUES) + 1, "report", unit="section", enabled=ctx.progress)
    quiet = dataclasses.replace(ctx, progress=False)
    sections.append(("training", _training_section(ctx, metrics)))
    bar.update(1)
    for name, technique in TECHNIQUES.items():
        try:
            sections.append((name, technique(quiet)))
        except ValueError as err:
            sections.append((name, f"{name} could not run on this model: {err}"))
        bar.update(1)
    bar.close()
    path = Path(out_dir) / "report.html"
    atomic_write_text(path, report_html(title, sections))
    return path
