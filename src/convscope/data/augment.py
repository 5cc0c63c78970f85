"""Training-time data augmentation from the notes' AlexNet section (§2.2).

Three label-preserving transformations, applied to uint8 batches (N, C, H, W) before
normalisation, each vectorised over the batch (no Python loop over images):

- random translations: pad the image by ``translate`` pixels (zeros) and crop a random
  H x W window, i.e. shift by up to ``translate`` pixels in each direction;
- horizontal reflection with probability 1/2 (off by default: it changes digits);
- AlexNet's PCA colour augmentation: add ``sum_i alpha_i * lambda_i * p_i`` to every pixel
  of an image, where (lambda_i, p_i) are the eigenvalues and eigenvectors of the 3x3
  covariance of the training set's RGB values and ``alpha_i ~ N(0, pca_std^2)`` is drawn
  once per image (Krizhevsky et al. 2012 use ``pca_std = 0.1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Augment", "pca_color_basis", "random_translate", "random_resized_crop", "center_crops"]

_PCA_SAMPLE = 200_000      # pixels used to estimate the RGB covariance (plenty for a 3x3 matrix)


def pca_color_basis(images: np.ndarray, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (3,) and eigenvectors (3, 3) (columns) of the RGB covariance of uint8 images
    (N, 3, H, W), in [0, 255] units, estimated on a random sample of pixels."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"PCA colour augmentation needs RGB images (N, 3, H, W), got shape {images.shape}")
    rng = rng if rng is not None else np.random.default_rng(0)
    n, _, h, w = images.shape
    count = min(_PCA_SAMPLE, n * h * w)
    flat = rng.integers(0, n * h * w, size=count)
    img, pix = np.divmod(flat, h * w)
    pixels = images[img, :, pix // w, pix % w].astype(np.float64)        # (count, 3)
    eigvals, eigvecs = np.linalg.eigh(np.cov(pixels, rowvar=False))
    return np.clip(eigvals, 0.0, None), eigvecs


@dataclass
class Augment:
    """Callable ``augment(images_uint8, rng) -> images_uint8`` for :class:`~convscope.training.Trainer`.

    ``translate``: maximum shift in pixels (0 = off). ``hflip``: random horizontal reflection.
    ``pca_std``: standard deviation of AlexNet's colour-jitter coefficients (0 = off); needs
    ``eigvals``/``eigvecs`` from :func:`pca_color_basis` (see :meth:`fit`).
    """

    translate: int = 0
    hflip: bool = False
    pca_std: float = 0.0
    eigvals: np.ndarray | None = None
    eigvecs: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.translate, (int, np.integer)) or isinstance(self.translate, bool) \
                or self.translate < 0:
            raise ValueError(f"translate must be a non-negative integer, got {self.translate!r}")
        if not self.pca_std >= 0:
            raise ValueError(f"pca_std must be non-negative, got {self.pca_std!r}")

    @property
    def active(self) -> bool:
        return bool(self.translate or self.hflip or self.pca_std)

    def fit(self, train_images: np.ndarray, rng: np.random.Generator | None = None) -> "Augment":
        """Learn what needs the training set (the PCA colour basis), if anything."""
        if self.pca_std and self.eigvals is None:
            self.eigvals, self.eigvecs = pca_color_basis(train_images, rng)
        return self

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """images: uint8 (N, C, H, W) -> augmented uint8 (N, C, H, W), a new array."""
        out = images
        if self.translate:
            out = random_translate(out, self.translate, rng)
        if self.hflip:
            flip = rng.random(len(out)) < 0.5
            out = np.where(flip[:, None, None, None], out[..., ::-1], out)
        if self.pca_std:
            out = self._pca_jitter(out, rng)
        return out

    def _pca_jitter(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.eigvals is None or images.shape[1] != 3:
            raise ValueError("PCA colour augmentation needs RGB data and a fitted basis (call fit first); "
                             f"got {images.shape[1]} channel(s)")
        alpha = rng.normal(0.0, self.pca_std, size=(len(images), 3))          # (N, 3)
        shift = (alpha * self.eigvals) @ self.eigvecs.T                        # (N, 3) RGB offsets
        out = images.astype(np.float32) + shift.astype(np.float32)[:, :, None, None]
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)

    def to_dict(self) -> dict:
        d = {"translate": int(self.translate), "hflip": bool(self.hflip), "pca_std": float(self.pca_std)}
        if self.eigvals is not None:
            d["eigvals"], d["eigvecs"] = self.eigvals.tolist(), self.eigvecs.tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Augment":
        vals, vecs = d.get("eigvals"), d.get("eigvecs")
        return cls(int(d.get("translate", 0)), bool(d.get("hflip", False)), float(d.get("pca_std", 0.0)),
                   None if vals is None else np.asarray(vals), None if vecs is None else np.asarray(vecs))


def random_translate(images: np.ndarray, pad: int, rng: np.random.Generator) -> np.ndarray:
    """Shift each image by (dy, dx) drawn uniformly from [-pad, pad]^2, filling with zeros.

    Pad-and-crop as one gather: output[n, c, i, j] = padded[n, c, i + oy[n], j + ox[n]].
    """
    n, c, h, w = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oy = rng.integers(0, 2 * pad + 1, size=n)
    ox = rng.integers(0, 2 * pad + 1, size=n)
    rows = (oy[:, None] + np.arange(h))[:, None, :, None]                     # (N, 1, H, 1)
    cols = (ox[:, None] + np.arange(w))[:, None, None, :]                     # (N, 1, 1, W)
    return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None], rows, cols]


def random_resized_crop(images: np.ndarray, size: tuple[int, int], rng: np.random.Generator,
                        scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> np.ndarray:
    """torchvision's RandomResizedCrop on uint8 (N, C, H0, W0) -> (N, C, H, W).

    Per image: a window of area ``U(scale) * H0 * W0`` and aspect ratio log-uniform in ``ratio``
    (up to 10 tries, then the centred window of the nearest admissible ratio), resized to
    ``size`` with Pillow's bilinear filter.
    """
    from .geometry import resize
    n, c, h0, w0 = images.shape
    out = np.empty((n, c, *size), dtype=np.uint8)
    log_ratio = np.log(ratio)
    for k in range(n):
        for _ in range(10):
            area = h0 * w0 * rng.uniform(*scale)
            aspect = float(np.exp(rng.uniform(*log_ratio)))
            w = int(round(np.sqrt(area * aspect)))
            h = int(round(np.sqrt(area / aspect)))
            if 0 < w <= w0 and 0 < h <= h0:
                top, left = int(rng.integers(0, h0 - h + 1)), int(rng.integers(0, w0 - w + 1))
                break
        else:                                                   # the centred window, ratio clamped
            aspect = w0 / h0
            w, h = (w0, int(round(w0 / ratio[0]))) if aspect < ratio[0] else \
                (int(round(h0 * ratio[1])), h0) if aspect > ratio[1] else (w0, h0)
            h, w = min(h, h0), min(w, w0)
            top, left = (h0 - h) // 2, (w0 - w) // 2
        out[k] = resize(images[k, :, top:top + h, left:left + w], size)
    return out


def center_crops(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The central (H, W) window of every image of uint8 (N, C, H0, W0): a view, no copy."""
    from .geometry import crop_offsets
    top, left = crop_offsets(images.shape[2], images.shape[3], size)
    return images[:, :, top:top + size[0], left:left + size[1]]
