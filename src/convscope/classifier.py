"""A trained classifier: the network, the preprocessing its inputs need, and its class names.

:class:`Classifier` is what ``convscope.train`` returns and ``convscope.load`` reads, and what
every tool that looks inside a network takes. It turns the images a user holds into what the
network was trained on:

- uint8 arrays as datasets store them: ``(N, H, W)`` for grayscale models, ``(N, C, H, W)``
  or ``(N, H, W, C)``; one image without the batch axis is accepted too;
- float arrays of pixel values in [0, 1] (torchvision's ``ToTensor`` scale);
- a list of image files (PNG / JPEG, read safely with :func:`convscope.data.read_image`),
  converted to the model's channels and resized to its input size.

A float array is never taken as already normalised unless ``model_space=True`` says so, and
one on the 0..255 scale (or with negative values) is refused rather than guessed at.

>>> import convscope
>>> clf = convscope.Classifier.untrained("lenet5", num_classes=10, input_shape=(1, 28, 28))
>>> clf.predict(np.zeros((2, 28, 28), dtype=np.uint8)).shape
(2, 10)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .data import Normalizer
from .layers import Module
from .validation import check_int

__all__ = ["Classifier", "load"]

_FILE_TYPES = (str, os.PathLike)


class Classifier:
    """``model`` (a :class:`Module`, kept in eval mode) with its input normalisation and classes.

    ``meta`` is the checkpoint's config (the data it was trained on, its training settings
    and history); :meth:`save` writes it back, so a saved classifier is a run's ``model.npz``.

    ``meta["preprocess"]`` (optional) says how images of another size reach the input size:
    ``{"resize": S, "crop": True}`` resizes the shorter side to S (bilinear, antialiased) and
    takes the centre ``H x W`` crop, torchvision's ImageNet evaluation transform; without it
    an image file is stretched to ``H x W`` and an array must already have that size.
    """

    def __init__(self, model: Module, normalizer: Normalizer, class_names, input_shape,
                 meta: dict | None = None) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"model must be a convscope Module, got {type(model).__name__}")
        if not isinstance(normalizer, Normalizer):
            raise TypeError(f"normalizer must be a convscope.data.Normalizer, got {type(normalizer).__name__}")
        shape = tuple(check_int(v, "input_shape entry", minimum=1) for v in input_shape)
        if len(shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
        if normalizer.channels != shape[0]:
            raise ValueError(f"the normalizer is for {normalizer.channels} channel(s) but input_shape "
                             f"{shape} has {shape[0]}")
        names = [str(c) for c in class_names]
        out = model.output_shape(shape)
        if out != (len(names),):
            raise ValueError(f"the model gives {out} outputs per image but there are {len(names)} class names")
        self.model = model.eval()
        self.normalizer = normalizer
        self.class_names = names
        self.input_shape = shape
        self.meta = dict(meta or {})
        self.transform = _check_transform(self.meta.get("preprocess"))

    # -- building and files ----------------------------------------------------------------
    @classmethod
    def untrained(cls, name: str, num_classes: int = 10, input_shape=(1, 28, 28), *,
                  rng: np.random.Generator | None = None, **options) -> "Classifier":
        """A freshly initialised registry model with an identity-like normalisation (mean 0.5,
        std 0.5) and classes named 0..K-1: for trying the API, never for conclusions."""
        from .models import build_model
        c, h, w = input_shape
        model = build_model(name, num_classes=num_classes, in_channels=c, input_size=(h, w), rng=rng, **options)
        return cls(model, Normalizer([0.5] * c, [0.5] * c), [str(k) for k in range(num_classes)], (c, h, w))

    @classmethod
    def from_checkpoint(cls, path) -> "Classifier":
        """The classifier stored in a checkpoint file, or in a run directory's ``model.npz``."""
        from .training import CheckpointError, load_checkpoint
        path = Path(path)
        if path.is_dir():
            candidate = path / "model.npz"
            if not candidate.exists():
                raise CheckpointError(f"'{path}' is a directory without a model.npz: not a finished run "
                                      f"(a stopped run continues with convscope train --resume {path})")
            path = candidate
        model, meta = load_checkpoint(path)
        meta.pop("optim_state", None)
        missing = [key for key in ("normalizer", "input_shape") if key not in meta]
        if missing:
            raise CheckpointError(f"'{path}' has no {missing[0]!r} in its config; it cannot be used as a classifier")
        mc = meta["model"]
        names = meta.get("class_names") or [str(k) for k in range(mc["num_classes"])]
        try:
            return cls(model, Normalizer.from_dict(meta["normalizer"]), names, meta["input_shape"], meta)
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"'{path}': {err}") from None

    def save(self, path) -> Path:
        """Write the classifier as a checkpoint (the format of a run's ``model.npz``), atomically."""
        from .training import save_checkpoint
        meta = {k: v for k, v in self.meta.items() if k not in ("model", "format", "version")}
        meta.update(normalizer=self.normalizer.to_dict(), class_names=list(self.class_names),
                    input_shape=list(self.input_shape))
        save_checkpoint(path, self.model, meta)
        return Path(path)

    # -- inputs ------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def name(self) -> str:
        """The architecture's registry name (or what the model calls itself)."""
        return str(getattr(self.model, "config", {}).get("name", type(self.model).__name__))

    def pixels(self, images) -> np.ndarray:
        """Raw images as uint8 (N, C, H, W) at the model's input size (what is shown to a person).

        Accepts what :meth:`preprocess` accepts except model-space arrays.
        """
        if isinstance(images, _FILE_TYPES) or (isinstance(images, (list, tuple)) and images
                                               and all(isinstance(p, _FILE_TYPES) for p in images)):
            paths = [images] if isinstance(images, _FILE_TYPES) else list(images)
            return np.stack([self._read_file(p) for p in paths])
        if isinstance(images, (list, tuple)):
            if not images:
                raise ValueError("images is an empty list; give at least one image or image file")
            images = np.asarray(images)
        if not isinstance(images, np.ndarray):
            raise TypeError(f"images must be a uint8 array, a float array in [0, 1] or a list of image files, "
                            f"got {type(images).__name__}")
        images = self._to_uint8(images)
        if self.transform and images.ndim in (3, 4):      # photos of any size, as the preset says
            chw = self._any_size_layout(images)
            if chw is not None:
                return np.stack([self._fit_size(img) for img in chw])
        return self._layout(images)

    def preprocess(self, images, *, model_space: bool = False) -> np.ndarray:
        """Raw images -> float32 (N, C, H, W) in model space (normalised as in training).

        With ``model_space=True``, ``images`` must already be a float array (N, C, H, W) in
        model space (the output of this method) and is returned as float32, after a shape check.
        """
        if model_space:
            from .validation import check_float_images
            x = check_float_images(np.asarray(images) if isinstance(images, list) else images, "images")
            if tuple(x.shape[1:]) != self.input_shape:
                raise ValueError(f"images in model space must be (N, {', '.join(map(str, self.input_shape))}), "
                                 f"got shape {x.shape}")
            return x.astype(np.float32, copy=False)
        if isinstance(images, np.ndarray) and np.issubdtype(images.dtype, np.floating):
            return self._from_unit_floats(images)
        return self.normalizer(self.pixels(images))

    # -- predictions ---------------------------------------------------------------------------
    def logits(self, images, *, model_space: bool = False, batch_size: int = 256) -> np.ndarray:
        """The network's raw scores (N, K), in evaluation mode, batch by batch."""
        from .training import predict
        x = self.preprocess(images, model_space=model_space)
        return predict(self.model, x, None, check_int(batch_size, "batch_size", minimum=1))

    def predict(self, images, *, model_space: bool = False, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (N, K): the softmax of :meth:`logits`; each row sums to 1."""
        z = self.logits(images, model_space=model_space, batch_size=batch_size).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        return p.astype(np.float32)

    def top(self, images, k: int = 5, **kwargs) -> list[list[dict]]:
        """The ``k`` most probable classes per image: ``[{"index", "class", "probability"}, ...]``."""
        k = min(check_int(k, "k", minimum=1), self.num_classes)
        probs = self.predict(images, **kwargs)
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return [[{"index": int(j), "class": self.class_names[j], "probability": float(row[j])} for j in idx]
                for row, idx in zip(probs, order)]

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.input_shape))
        return (f"Classifier({self.name}, {self.model.num_parameters():,} parameters, input {shape}, "
                f"{self.num_classes} classes)")

    # -- helpers ---------------------------------------------------------------------------------
    def _from_unit_floats(self, images: np.ndarray) -> np.ndarray:
        lo, hi = (float(images.min()), float(images.max())) if images.size else (0.0, 0.0)
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"float images must hold pixel values in [0, 1], got values in [{lo:g}, {hi:g}]: for 0..255 "
                f"pixels pass a uint8 array; for arrays already normalised for the model pass model_space=True")
        x = self._layout(images.astype(np.float32) * np.float32(255.0))
        return self.normalizer(x)

    def _to_uint8(self, images: np.ndarray) -> np.ndarray:
        if images.dtype == np.uint8:
            return images
        if np.issubdtype(images.dtype, np.integer) and images.size and \
                0 <= int(images.min()) and int(images.max()) <= 255:
            return images.astype(np.uint8)
        if np.issubdtype(images.dtype, np.floating):
            raise TypeError("float images go through preprocess(), which takes pixel values in [0, 1]")
        raise TypeError(f"images must be uint8 pixels (0..255), got dtype {images.dtype}"
                        + (" with values outside 0..255" if np.issubdtype(images.dtype, np.integer) else ""))

    def _layout(self, a: np.ndarray) -> np.ndarray:
        """(N, C, H, W) from one of the layouts users hold; ValueError naming the shape otherwise."""
        c, h, w = self.input_shape
        if a.ndim == 2 and c == 1 and a.shape == (h, w):
            return a[None, None]
        if a.ndim == 3:
            if c == 1 and a.shape[1:] == (h, w):
                return a[:, None]
            if a.shape == (c, h, w):
                return a[None]
            if a.shape == (h, w, c):
                return a.transpose(2, 0, 1)[None]
        if a.ndim == 4:
            if a.shape[1:] == (c, h, w):
                return a
            if a.shape[1:] == (h, w, c):
                return a.transpose(0, 3, 1, 2)
        layouts = ("(N, H, W), " if c == 1 else "") + f"(N, {c}, {h}, {w}) or (N, {h}, {w}, {c})"
        raise ValueError(f"images of shape {a.shape} do not fit this model, which takes {c}x{h}x{w} images: "
                         f"expected {layouts}; image files of any size are resized")

    def _any_size_layout(self, a: np.ndarray) -> list[np.ndarray] | None:
        """uint8 images of any size as a list of (C, h, w), when the layout is unambiguous."""
        c = self.input_shape[0]
        if a.ndim == 3 and a.shape[0] == c and a.shape[2] != c:
            return [a]
        if a.ndim == 3 and a.shape[2] == c:
            return [a.transpose(2, 0, 1)]
        if a.ndim == 4 and a.shape[1] == c:
            return list(a)
        if a.ndim == 4 and a.shape[3] == c:
            return list(a.transpose(0, 3, 1, 2))
        return None

    def _fit_size(self, img: np.ndarray) -> np.ndarray:
        """uint8 (C, h0, w0) -> (C, H, W): the preset's resize and centre crop, or a stretch."""
        from .data.geometry import center_crop, resize, resize_shorter
        size = self.input_shape[1:]
        if self.transform:
            img = resize_shorter(img, self.transform["resize"])
            if self.transform["crop"]:
                img = center_crop(img, size)
        return resize(img, size)

    def _read_file(self, path) -> np.ndarray:
        from .data import read_image
        return self._fit_size(read_image(path, channels=self.input_shape[0]))     # (C, h0, w0) -> (C, H, W)


def _check_transform(spec) -> dict:
    """The ``preprocess`` entry of a checkpoint's config, checked: {} or {"resize": S, "crop": bool}."""
    if not spec:
        return {}
    if not isinstance(spec, dict) or set(spec) - {"resize", "crop", "name"}:
        raise ValueError(f"preprocess must be a dict with 'resize' and optionally 'crop', got {spec!r}")
    out = dict(spec)
    out["resize"] = check_int(spec.get("resize"), "preprocess resize", minimum=1, maximum=8192)
    out["crop"] = bool(spec.get("crop", True))
    return out


def load(path) -> Classifier:
    """The classifier in a checkpoint file or a run directory (its ``model.npz``).

    >>> import convscope, tempfile, os
    >>> clf = convscope.Classifier.untrained("lenet5")
    >>> path = clf.save(os.path.join(tempfile.mkdtemp(), "x.npz"))
    >>> convscope.load(path).class_names[:3]
    ['0', '1', '2']
    """
    return Classifier.from_checkpoint(path)
