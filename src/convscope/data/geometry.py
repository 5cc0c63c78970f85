"""Image geometry on uint8 (C, H, W) arrays: torchvision's Resize(int), CenterCrop and a plain resize.

Resizing uses Pillow's bilinear filter, which antialiases when it shrinks — the same pixels
torchvision's ``Resize`` gives for PIL images — so a checkpoint imported with torchvision's
preprocessing sees the inputs it was trained on.
"""

from __future__ import annotations

import numpy as np

from .images import pillow

__all__ = ["resize", "resize_shorter", "center_crop", "crop_offsets", "shorter_side_size"]


def resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (C, h, w) -> (C, H, W) for ``size`` = (H, W), bilinear with antialiasing, per channel."""
    h, w = size
    if img.shape[1:] == (h, w):
        return img
    image = pillow()
    planes = [np.asarray(image.fromarray(np.ascontiguousarray(p)).resize((w, h), image.BILINEAR)) for p in img]
    return np.stack(planes)


def shorter_side_size(height: int, width: int, short: int) -> tuple[int, int]:
    """torchvision's ``Resize(short)``: the shorter side becomes ``short``, the longer one
    ``int(short * long / shorter)`` (truncated, as torchvision does)."""
    if height <= width:
        return short, int(short * width / height)
    return int(short * height / width), short


def resize_shorter(img: np.ndarray, short: int) -> np.ndarray:
    """uint8 (C, h, w) with its shorter side resized to ``short`` (aspect ratio kept)."""
    return resize(img, shorter_side_size(img.shape[1], img.shape[2], short))


def crop_offsets(height: int, width: int, size: tuple[int, int]) -> tuple[int, int]:
    """(top, left) of the central ``size`` window of a height x width image, rounded as
    torchvision's CenterCrop rounds them; ValueError if the window does not fit."""
    h, w = size
    top, left = int(round((height - h) / 2.0)), int(round((width - w) / 2.0))
    if top < 0 or left < 0:
        raise ValueError(f"cannot crop {h}x{w} from an image of {height}x{width}")
    return top, left


def center_crop(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The central (H, W) window of (C, h, w) (a view)."""
    top, left = crop_offsets(img.shape[1], img.shape[2], size)
    return img[:, top:top + size[0], left:left + size[1]]
