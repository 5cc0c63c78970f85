"""One PNG / JPEG file as a uint8 array (C, H, W), read with Pillow and bounded before decoding.

:func:`read_image` is the one way convscope decodes an image file: the image-folder datasets
and ``Classifier`` predictions on files both go through it. What it does with each kind of
image:

- its size is read from the header first and refused above ``max_pixels`` (and Pillow's own
  decompression-bomb check is turned into an error for this call only), so a small file
  that declares 30000x30000 pixels is never decoded; a PNG whose chunks declare more bytes
  than the file holds is refused before Pillow sees it;
- 8-bit grayscale ("L", and "1" as 0 / 255) is one channel; 16-bit and 32-bit grayscale
  ("I;16", "I;16B", "I;16L", "I", "F", sample values 0..65535) is scaled to 0..255 as
  ``round(value * 255 / 65535)``, values outside 0..65535 clipped;
- colour (RGB, palette "P", CMYK, YCbCr, ...) is converted to RGB by Pillow, three channels;
- alpha ("LA", "RGBA", "PA", or a palette with a transparent entry) is composited onto
  black: each channel becomes ``round(value * alpha / 255)``, so transparent pixels read as 0
  whatever colour they hide;
- ``channels=1`` turns colour into luminance (ITU-R 601-2, what Pillow's ``convert("L")``
  computes) and ``channels=3`` repeats a gray plane three times.

Only the PNG and JPEG decoders of Pillow are tried. A missing, corrupt or unsupported file
raises :class:`DataFormatError`; Pillow is imported only when an image is read.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib

import numpy as np

from ..validation import check_int
from .errors import DataFormatError

__all__ = ["DEFAULT_MAX_PIXELS", "GRAY_MODES", "read_image", "image_shape", "pillow"]

DEFAULT_MAX_PIXELS = 64 * 2 ** 20      # 64 megapixels: a large photo; its RGB array is 192 MiB
GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FORMATS = ("PNG", "JPEG")              # (Pillow opens the MPO photos of many cameras as JPEG)
_WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
# What a corrupt file makes Pillow's decoders raise: OSError (truncated data, UnidentifiedImageError),
# SyntaxError (bad PNG chunks) and ValueError, and from less polished paths a few more.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
                  struct.error, zlib.error, OverflowError, ZeroDivisionError)


def pillow():
    """Pillow's Image module, imported only when an image is read."""
    try:
        from PIL import Image
    except ImportError:
        raise DataFormatError('reading image files needs Pillow: pip install "convscope[pictures]"') from None
    return Image


def _check_png_chunks(path) -> None:
    """Refuse a PNG whose chunk lengths run past the end of the file: Pillow would allocate what they say.

    Walks the chunk headers only (8 bytes each, then a seek); a file that is not a PNG is
    left to Pillow.
    """
    with open(path, "rb") as f:
        if f.read(len(_PNG_SIGNATURE)) != _PNG_SIGNATURE:
            return
        size = os.fstat(f.fileno()).st_size
        while len(head := f.read(8)) == 8:
            length, kind = struct.unpack(">I4s", head)
            if length > size - f.tell():
                raise DataFormatError(f"'{path}': not a readable PNG/JPEG image (its {ascii(kind)[2:-1]} chunk "
                                      f"declares {length} bytes, more than the file holds)")
            if kind == b"IEND":
                return
            f.seek(length + 4, os.SEEK_CUR)                # the data and its CRC


def _open(image_module, path, max_pixels: int):
    """The opened (not yet decoded) image at ``path``, its size checked against ``max_pixels``."""
    img = image_module.open(path, formats=_FORMATS)
    width, height = img.size
    if width * height > max_pixels:
        img.close()
        raise DataFormatError(f"'{path}': the image declares {width}x{height} pixels, more than the "
                              f"{max_pixels} this reader decodes (max_pixels); shrink it first")
    return img


def _guarded(path, max_pixels: int, work):
    """``work(image)`` on the opened image; every failure a one-line DataFormatError naming ``path``."""
    image_module = pillow()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", image_module.DecompressionBombWarning)
            _check_png_chunks(path)
            with _open(image_module, path, max_pixels) as img:
                return work(img)
    except DataFormatError:
        raise
    except FileNotFoundError:
        raise DataFormatError(f"image file not found: {path}") from None
    except (image_module.DecompressionBombError, image_module.DecompressionBombWarning) as err:
        raise DataFormatError(f"'{path}': refusing a decompression bomb ({err})") from None
    except MemoryError:
        raise DataFormatError(f"'{path}': the image is too large to load in memory") from None
    except _DECODE_ERRORS as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataFormatError(f"'{path}': not a readable PNG/JPEG image ({reason})") from None


def _natural_channels(mode: str) -> int:
    return 1 if mode in GRAY_MODES else 3


def image_shape(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int, int]:
    """(C, H, W) that :func:`read_image` with ``channels=None`` returns, from the file's header only."""
    max_pixels = check_int(max_pixels, "max_pixels", minimum=1)
    return _guarded(path, max_pixels, lambda img: (_natural_channels(img.mode), img.size[1], img.size[0]))


def _composite(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 ``color`` (H, W[, 3]) over black with uint8 ``alpha`` (H, W): round(color * alpha / 255)."""
    if color.ndim == 3:
        alpha = alpha[..., None]
    return ((color.astype(np.uint16) * alpha + 127) // 255).astype(np.uint8)


def _decode(img) -> np.ndarray:
    """The pixels of an opened image: uint8 (H, W) for grayscale modes, (H, W, 3) for colour."""
    mode = img.mode
    if mode in _WIDE_MODES:
        wide = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0)       # (H, W)
        return np.rint(np.clip(wide, 0, 65535) * (255 / 65535)).astype(np.uint8)
    if mode in ("1", "L"):
        return np.asarray(img.convert("L"), dtype=np.uint8)
    if mode in ("LA", "La"):
        la = np.asarray(img.convert("LA"), dtype=np.uint8)                    # (H, W, 2)
        return _composite(la[..., 0], la[..., 1])
    if mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.uint8)                # (H, W, 4)
        return _composite(rgba[..., :3], rgba[..., 3])
    return np.asarray(img.convert("RGB"), dtype=np.uint8)                     # (H, W, 3)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma of uint8 (H, W, 3), rounded as Pillow's ``convert("L")`` does."""
    r, g, b = (rgb[..., k].astype(np.uint32) for k in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


def read_image(path, channels: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The image file at ``path`` as a fresh uint8 array (C, H, W).

    ``channels``: 1 (luminance), 3 (RGB) or None (1 for grayscale files, else 3).
    ``max_pixels`` bounds H * W, checked from the header before anything is decoded.
    See the module docstring for 16-bit, palette and alpha images.

    >>> read_image("photo.png", channels=2)
    Traceback (most recent call last):
    ValueError: channels must be 1, 3 or None, got 2
    """
    if channels is not None and (check_int(channels, "channels") not in (1, 3)):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
    max_pixels = check_int(max_pixels, "max_pixels", minimum=1)
    pixels = _guarded(path, max_pixels, _decode)                              # (H, W) or (H, W, 3)
    if channels == 1 and pixels.ndim == 3:
        pixels = _luminance(pixels)
    if pixels.ndim == 2:
        pixels = pixels[None] if channels != 3 else np.repeat(pixels[None], 3, axis=0)
    else:
        pixels = pixels.transpose(2, 0, 1)
    return np.ascontiguousarray(pixels)
