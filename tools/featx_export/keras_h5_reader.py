"""MobileNetV2 from a Keras 2 / tf.keras HDF5 file (h5py, no TensorFlow).

Two layouts share one structure: a group whose `layer_names` attribute lists
the layers, one subgroup per layer whose `weight_names` attribute lists its
weights ("Conv1/kernel:0"), each a dataset at <layer group>/<weight name>.
model.save() puts that group under "model_weights"; save_weights() and the
keras.applications weight files put it at the root. Attributes over HDF5's
64 KB header limit are split into name0, name1, ... by Keras.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional

import numpy as np

from . import ir
from .mobilenet_names import network_from_variables, parse_model_name


def _attr_list(group, name: str) -> Optional[List[str]]:
    if name in group.attrs:
        values = list(group.attrs[name])
    elif f"{name}0" in group.attrs:
        values, i = [], 0
        while f"{name}{i}" in group.attrs:
            values += list(group.attrs[f"{name}{i}"])
            i += 1
    else:
        return None
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def read_weights(path: str) -> Dict[str, np.ndarray]:
    """{weight name without ":0": array} over every layer of the file."""
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ValueError("reading Keras .h5 needs h5py (Debian: python3-h5py)") from exc
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not an HDF5 file ({exc})") from exc
    with f:
        root = f["model_weights"] if "model_weights" in f else f
        layers = _attr_list(root, "layer_names")
        if layers is None:
            if isinstance(f.get("layers"), h5py.Group):
                raise ValueError(f"{path}: a Keras 3 .weights.h5 (layers/*/vars), which holds no "
                                 "weight names; save with tf.keras (Keras 2) .h5 or a SavedModel")
            raise ValueError(f"{path}: no layer_names attribute at the root or in model_weights; "
                             f"top-level entries: {sorted(f.keys())[:8]}")
        out: Dict[str, np.ndarray] = {}
        for layer in layers:
            if layer not in root:
                raise ValueError(f"{path}: layer_names lists {layer!r} but there is no such group")
            group = root[layer]
            for weight in _attr_list(group, "weight_names") or []:
                if weight not in group:
                    raise ValueError(f"{path}: layer {layer!r} lists weight {weight!r} but has no "
                                     "such dataset")
                name = weight[:-2] if weight.endswith(":0") else weight
                out[name] = np.asarray(group[weight][()])
    return out


def read_keras_h5(path: str, resolution: Optional[int] = None,
                  width_multiplier: Optional[float] = None) -> ir.Network:
    """A Keras MobileNetV2 (.h5 from model.save or save_weights, or a
    keras.applications weight file). Resolution: given, else from a
    keras.applications file name (..._1.0_224.h5), else 224."""
    path = os.fspath(path)
    variables = read_weights(path)
    name_width, name_resolution = parse_model_name(os.path.basename(path))
    try:
        net = network_from_variables(
            variables, resolution=resolution or name_resolution,
            width_multiplier=width_multiplier, source=path, source_format="keras_h5")
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    if name_width is not None and abs(name_width - net.width_multiplier) > 1e-6:
        net.notes += f"; file name says width {name_width}, channels say {net.width_multiplier}"
    return net
