"""Image -> float32 RGB [H, W, 3] in [0, 1], the way TF2 code feeds a Hub model.

Independent of featx's C++ image code (PIL decodes, numpy resizes) so the
two can check each other:

- decode with PIL; grey and palette images become RGB, RGBA drops alpha
  (no compositing, like tf.image.decode_* with channels=3);
- values / 255 as float32;
- optional central crop with tf.image.central_crop's arithmetic;
- bilinear resize exactly as tf.image.resize's default (half-pixel centres,
  no antialias): src = (dst + 0.5) * in / out - 0.5, lower neighbour
  max(floor(src), 0), upper min(ceil(src), in - 1), weight src - floor(src);
  computed in float64, then cast to float32.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image


def load_rgb(path) -> np.ndarray:
    """Decode an image file to float32 [H, W, 3] in [0, 1]."""
    path = os.fspath(path)
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                # 16-bit grey: keep the precision, scale to [0, 1] then to RGB.
                grey = np.asarray(img, dtype=np.float64) / 65535.0
                return np.repeat(grey[:, :, None], 3, axis=2).astype(np.float32)
            rgb = img.convert("RGB")  # RGBA: alpha dropped; L/P/CMYK: converted
            return (np.asarray(rgb, dtype=np.float32) / np.float32(255.0))
    except (OSError, SyntaxError, ValueError) as e:  # PIL's errors for bad or unknown files
        raise ValueError(f"{path}: cannot decode image ({e})") from None


def central_crop(image: np.ndarray, fraction: float) -> np.ndarray:
    """tf.image.central_crop: keep the central `fraction` of each side."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"central crop fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0:
        return image
    h, w = image.shape[:2]
    top = int((h - h * fraction) / 2)
    left = int((w - w * fraction) / 2)
    return image[top:h - top, left:w - left]


def _axis_weights(in_size: int, out_size: int):
    scale = in_size / out_size
    src = (np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5
    floor = np.floor(src)
    lower = np.maximum(floor, 0).astype(np.int64)
    upper = np.minimum(np.ceil(src), in_size - 1).astype(np.int64)
    return lower, upper, src - floor


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """tf.image.resize(image, [height, width]) with the default bilinear method."""
    if height < 1 or width < 1:
        raise ValueError(f"resize target must be positive, got {height}x{width}")
    x = np.asarray(image, dtype=np.float64)
    y0, y1, wy = _axis_weights(x.shape[0], height)
    x0, x1, wx = _axis_weights(x.shape[1], width)
    wx = wx[None, :, None]
    top = x[y0][:, x0] + (x[y0][:, x1] - x[y0][:, x0]) * wx
    bottom = x[y1][:, x0] + (x[y1][:, x1] - x[y1][:, x0]) * wx
    out = top + (bottom - top) * wy[:, None, None]
    return out.astype(np.float32)


def preprocess(path, height: int, width: int, crop_fraction: float = 1.0) -> np.ndarray:
    """File -> float32 [height, width, 3] in [0, 1]."""
    return resize_bilinear(central_crop(load_rgb(path), crop_fraction), height, width)
