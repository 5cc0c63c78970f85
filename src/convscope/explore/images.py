"""Pictures in and out of the explorer: request bodies decoded safely, drawings prepared as
MNIST digits are, and arrays sent back as PNG or raw float32.

- :func:`decode_body`: an untrusted PNG / JPEG body -> uint8 (C, H, W), through the same
  reader every convscope image goes through (:func:`convscope.data.read_image`: size from the
  header first, decompression bombs refused). The body is written to a private temporary
  file for it and removed at once.
- :func:`fit_to_input`: any-size pixels -> the model's (C, H, W), as ``Classifier`` treats an
  image file (its checkpoint's resize-and-crop preset, or a bilinear stretch).
- :func:`mnist_style`: a drawing -> 28x28 the way MNIST's digits were made (LeCun et al.):
  the ink's bounding box scaled to fit a 20x20 box preserving the aspect ratio
  (anti-aliased), then pasted into 28x28 so its centre of mass sits at the centre.
- :func:`png_bytes`, :func:`data_url`, :func:`floats`: responses.
"""

from __future__ import annotations

import base64
import io
import os
import tempfile

import numpy as np

from ..data import DataFormatError, read_image

__all__ = ["decode_body", "fit_to_input", "mnist_style", "png_bytes", "data_url", "floats",
           "signed_gray", "MNIST_BOX", "MNIST_SIZE"]

MNIST_SIZE = 28      # MNIST's images are 28x28 ...
MNIST_BOX = 20       # ... with the digit scaled to fit 20x20 inside
INK = 0              # a drawing's pixels above this value are ink


class ImageError(ValueError):
    """A request body that is not a readable PNG / JPEG (the server answers 400)."""


def decode_body(body: bytes, channels: int, workdir: str, max_pixels: int) -> np.ndarray:
    """uint8 (channels, H, W) of a PNG or JPEG held in ``body``; ImageError otherwise.

    ``max_pixels`` bounds H * W before anything is decoded; ``workdir`` is the explorer's own
    temporary directory (the only place it writes).
    """
    if not body:
        raise ImageError("the request body is empty; send a PNG or JPEG image")
    fd, path = tempfile.mkstemp(suffix=".img", dir=workdir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        return read_image(path, channels=channels, max_pixels=max_pixels)
    except DataFormatError as err:
        raise ImageError(str(err).replace(f"'{path}'", "the request body").replace(path, "the request body")) from None
    finally:
        os.unlink(path)


def _resize(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (h, w) -> (H, W), Pillow's bilinear filter (antialiased when shrinking)."""
    from PIL import Image
    h, w = size
    return np.asarray(Image.fromarray(plane).resize((w, h), Image.BILINEAR))


def fit_to_input(clf, pixels: np.ndarray) -> np.ndarray:
    """uint8 (C, h, w) -> (C, H, W) at ``clf.input_shape``: unchanged at the right size, the
    checkpoint's preset (resize the shorter side, centre crop) when it has one, else a
    bilinear stretch, as :meth:`Classifier.pixels` does for an image file."""
    _, h, w = clf.input_shape
    if pixels.shape[1:] == (h, w):
        return pixels
    if clf.transform:
        return clf.pixels(pixels[None])[0]
    return np.stack([_resize(plane, (h, w)) for plane in pixels])


def mnist_style(gray: np.ndarray) -> np.ndarray:
    """A drawing (H, W) uint8, light ink on black -> (28, 28) uint8 prepared as MNIST was.

    The bounding box of the ink (pixels > 0) is scaled so that its longer side is 20 pixels,
    the shorter in proportion (at least 1), with Pillow's antialiased bilinear filter; the
    result is placed in a black 28x28 image so that its centre of mass (pixel values as
    weights) lands on the image centre (13.5, 13.5), rounded to whole pixels; anything
    pushed past the border is cut. A blank drawing gives a black image.
    """
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise TypeError(f"mnist_style expects a uint8 (H, W) drawing, got {gray.dtype} {gray.shape}")
    out = np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.uint8)
    rows, cols = np.nonzero(gray > INK)
    if rows.size == 0:
        return out
    ink = gray[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    scale = MNIST_BOX / max(ink.shape)
    size = (max(1, int(round(ink.shape[0] * scale))), max(1, int(round(ink.shape[1] * scale))))
    digit = _resize(ink, size).astype(np.float64)                 # (h, w), longer side 20
    if digit.sum() == 0:                                          # a faint speck vanished
        digit = np.full(size, float(ink.max()))
    ys, xs = np.indices(digit.shape)
    cy, cx = (ys * digit).sum() / digit.sum(), (xs * digit).sum() / digit.sum()
    centre = (MNIST_SIZE - 1) / 2
    top, left = int(round(centre - cy)), int(round(centre - cx))
    src_r = slice(max(0, -top), min(size[0], MNIST_SIZE - top))
    src_c = slice(max(0, -left), min(size[1], MNIST_SIZE - left))
    dst_r = slice(src_r.start + top, src_r.stop + top)
    dst_c = slice(src_c.start + left, src_c.stop + left)
    out[dst_r, dst_c] = np.clip(np.rint(digit[src_r, src_c]), 0, 255).astype(np.uint8)
    return out


def png_bytes(image: np.ndarray) -> bytes:
    """PNG of uint8 pixels (C, H, W) with C 1 or 3, or (H, W)."""
    from PIL import Image
    a = np.asarray(image)
    if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[0] in (1, 3))):
        raise TypeError(f"png_bytes expects uint8 (C, H, W) with C 1 or 3, or (H, W); got {a.dtype} {a.shape}")
    if a.ndim == 3:
        a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def data_url(image: np.ndarray) -> str:
    """``data:image/png;base64,...`` of :func:`png_bytes`."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def floats(a: np.ndarray) -> str:
    """Base64 of ``a`` as little-endian float32 in C order (JavaScript's Float32Array)."""
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def signed_gray(a: np.ndarray) -> np.ndarray:
    """A signed image (C, H, W) -> uint8 for display: 0 is mid-grey, +-max|a| white / black,
    so the sign stays readable (one scale for the whole image)."""
    a = np.nan_to_num(np.asarray(a, dtype=np.float64))
    scale = float(np.abs(a).max()) or 1.0
    return np.clip(np.rint(127.5 + 127.5 * a / scale), 0, 255).astype(np.uint8)
