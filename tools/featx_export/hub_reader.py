"""MobileNetV2 from a TF Hub handle. Only the download needs TensorFlow
(tensorflow_hub resolves and caches the handle); the SavedModel it leaves is
read like any other, without running a TF graph.
"""

from __future__ import annotations

import os
from typing import Optional

from . import ir
from .mobilenet_names import parse_model_name
from .saved_model_reader import read_saved_model

NEEDS_TF = ("--hub needs tensorflow and tensorflow_hub; download the model (e.g. from "
            "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5 → .tar.gz) "
            "and pass the extracted directory to --saved-model")


def resolve_handle(handle: str) -> str:
    """A local directory for `handle` (a URL or Kaggle/Hub handle, or a local path)."""
    if os.path.isdir(handle):
        return handle
    try:
        import tensorflow  # noqa: F401  (tensorflow_hub needs it to load anything)
        import tensorflow_hub as hub
    except ImportError as exc:
        raise RuntimeError(NEEDS_TF) from exc
    return hub.resolve(handle)


def read_hub(handle: str, resolution: Optional[int] = None) -> ir.Network:
    """The handle's name gives width and resolution (mobilenet_v2_100_224); the
    resolved cache directory is a hash, so it is parsed here, not there."""
    local = resolve_handle(handle)
    _width, name_resolution = parse_model_name(handle)
    net = read_saved_model(local, resolution=resolution or name_resolution)
    net.source = handle
    net.source_format = "hub"
    return net
