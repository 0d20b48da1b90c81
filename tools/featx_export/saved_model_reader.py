"""MobileNetV2 from a TF SavedModel directory (TF Hub download, Keras model.save,
TF1 Hub module) or a bare checkpoint prefix, without TensorFlow: only the
variables bundle is read (tf_checkpoint.py); the graph in saved_model.pb is
not needed because the architecture is fixed and named (mobilenet_names.py).
"""

from __future__ import annotations

import os
from typing import Optional

from . import ir
from .mobilenet_names import network_from_variables, parse_model_name
from .tf_checkpoint import open_checkpoint


def read_saved_model(path: str, resolution: Optional[int] = None,
                     width_multiplier: Optional[float] = None) -> ir.Network:
    """`path`: a SavedModel dir (variables/variables.*), a variables dir, or a
    checkpoint prefix. Resolution is not in the weights: pass it, or it is taken
    from a Hub-style name in the path (mobilenet_v2_100_224), else 224."""
    path = os.fspath(path)
    ckpt = open_checkpoint(path)
    variables = ckpt.tensors()
    name_width, name_resolution = parse_model_name(os.path.abspath(path))
    if resolution is None:
        resolution = name_resolution
    is_saved_model = os.path.isdir(path) and os.path.isfile(os.path.join(path, "saved_model.pb"))
    try:
        net = network_from_variables(
            variables, resolution=resolution, width_multiplier=width_multiplier,
            source=path, source_format="saved_model" if is_saved_model else "tf_checkpoint")
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    if name_width is not None and abs(name_width - net.width_multiplier) > 1e-6:
        net.notes += (f"; path says width {name_width}, channels say "
                      f"{net.width_multiplier}")
    if ckpt.notes:
        net.notes += "; " + "; ".join(ckpt.notes)
    return net
