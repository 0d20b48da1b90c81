"""MobileNetV2 from a TF SavedModel directory (TF Hub download, Keras model.save,
TF1 Hub module) or a bare checkpoint prefix, without TensorFlow.

The variables bundle is read by tf_checkpoint.py. A Keras model saved whole
(`model.save('dir')` in TF 2.x Keras 2) also carries its layer structure in
keras_metadata.pb (or, before Keras 2.5, in saved_model.pb): then the layers
around the base are read too, by the Keras-config interpreter every Keras
container shares (keras_saved_model.py supplies config and weights to
keras_model.py): the Dense head after pooling, a Rescaling before the base. Without Keras metadata only the
MobileNetV2 variables are read (the architecture is fixed and named,
mobilenet_names.py), and variables that look like a head are an error
rather than silently dropped.
"""

from __future__ import annotations

import os
from typing import Optional

from . import ir
from .keras_saved_model import head_like_variables, load_keras_objects, read_keras_saved_model
from .mobilenet_names import network_from_variables, parse_model_name
from .tf_checkpoint import open_checkpoint


def read_saved_model(path: str, resolution: Optional[int] = None,
                     width_multiplier: Optional[float] = None) -> ir.Network:
    """`path`: a SavedModel dir (variables/variables.*), a variables dir, or a
    checkpoint prefix. Resolution is not in the weights: pass it, or it is taken
    from the Keras model's input shape, a Hub-style name in the path
    (mobilenet_v2_100_224), else 224."""
    path = os.fspath(path)
    ckpt = open_checkpoint(path)
    name_width, name_resolution = parse_model_name(os.path.abspath(path))
    is_saved_model = os.path.isdir(path) and os.path.isfile(os.path.join(path, "saved_model.pb"))
    no_keras = "not a SavedModel directory"
    if os.path.isdir(path):
        objects, source = load_keras_objects(path)
        if objects is not None:
            net = read_keras_saved_model(path, ckpt, objects, source, resolution=resolution,
                                         width_multiplier=width_multiplier,
                                         fallback_resolution=name_resolution)
            if ckpt.notes:
                net.notes += "; " + "; ".join(ckpt.notes)
            return net
        no_keras = source
    if resolution is None:
        resolution = name_resolution
    variables = ckpt.tensors()
    try:
        net = network_from_variables(
            variables, resolution=resolution, width_multiplier=width_multiplier,
            source=path, source_format="saved_model" if is_saved_model else "tf_checkpoint")
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    extra = head_like_variables(variables, net)
    if extra:
        raise ValueError(f"{path}: {len(extra)} weight matrices outside the MobileNetV2 "
                         f"({', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''}) but "
                         f"{no_keras}: the layers they belong to (order, activations) are "
                         "unknown and would be dropped; save the whole Keras model with "
                         "model.save(dir) in TF 2.x, or export the base alone")
    if name_width is not None and abs(name_width - net.width_multiplier) > 1e-6:
        net.notes += (f"; path says width {name_width}, channels say "
                      f"{net.width_multiplier}")
    if ckpt.notes:
        net.notes += "; " + "; ".join(ckpt.notes)
    scheme = net.notes.split(" variable names")[0]
    net.report = [f"kept base ({scheme} variable names): MobileNetV2 width "
                  f"{net.width_multiplier}, {net.feature_dim} features"
                  + (f"; kept classifier ({net.classifier.num_classes} classes)"
                     if net.classifier is not None else "")
                  + (f"; no Keras layers read ({no_keras})" if is_saved_model else "")]
    return net
