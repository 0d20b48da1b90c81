"""MobileNetV2 from a Keras 2 / tf.keras HDF5 file (h5py, no TensorFlow).

Two layouts share one structure: a group whose `layer_names` attribute lists
the layers, one subgroup per layer whose `weight_names` attribute lists its
weights ("Conv1/kernel:0"), each a dataset at <layer group>/<weight name>.
model.save() puts that group under "model_weights" and the model's JSON
config in the root attribute `model_config`; save_weights() and the
keras.applications weight files put the weights at the root and store no
config. Attributes over HDF5's 64 KB header limit are split into name0,
name1, ... by Keras.

With a config (the file's own, or `config=` from model.to_json()) the whole
model is read through keras_model: base, input scaling and the Dense head.
A nested model (a keras.applications base inside a Sequential) is one group
at the top, holding the weights of all its layers under their own names
("mobilenetv2_1.00_224/Conv1/kernel:0" or just "Conv1/kernel:0").
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import ir
from . import keras_model as km
from .mobilenet_names import network_from_variables, parse_model_name

# Weight-name layer parts that belong to a bare MobileNetV2 weight file.
_TOP_LAYERS = ("predictions", "Logits")


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


def _attr_text(attrs, name: str) -> Optional[str]:
    if name not in attrs:
        return None
    value = attrs[name]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO" and value.size == 1:
        value = value.reshape(-1)[0]
        return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
    return str(value)


def _open(path: str):
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ValueError("reading Keras .h5 needs h5py (Debian: python3-h5py)") from exc
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        detail = " ".join(str(exc).split())
        raise ValueError(f"{path}: not a readable HDF5 file ({detail})") from None


def _strip(name: str) -> str:
    return name[:-2] if name.endswith(":0") else name


def _layer_weights(path: str, root, layer: str) -> List[Tuple[str, np.ndarray]]:
    """(weight name without ":0", value) of one top-level layer group, in file order."""
    if layer not in root:
        raise ValueError(f"{path}: layer_names lists {layer!r} but there is no such group")
    group = root[layer]
    out = []
    for weight in _attr_list(group, "weight_names") or []:
        if weight not in group:
            raise ValueError(f"{path}: layer {layer!r} lists weight {weight!r} but has no "
                             "such dataset")
        try:
            value = np.asarray(group[weight][()])
        # h5py: OSError for damaged chunks, ValueError / TypeError for a damaged datatype
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"{path}: weight {layer}/{weight} is unreadable "
                             f"({' '.join(str(exc).split())})") from None
        out.append((_strip(weight), value))
    return out


def _weights_root(path: str, f):
    root = f["model_weights"] if "model_weights" in f else f
    layers = _attr_list(root, "layer_names")
    if layers is None:
        if "layers" in f or "_layer_checkpoint_dependencies" in f or "vars" in f:
            raise ValueError(f"{path}: a Keras 3 / tf.keras .weights.h5 (layers/*/vars), which names "
                             "no weights: read it with --keras FILE --keras-config config.json")
        raise ValueError(f"{path}: no layer_names attribute at the root or in model_weights; "
                         f"top-level entries: {sorted(f.keys())[:8]}")
    return root, layers


def read_weights(path: str) -> Dict[str, np.ndarray]:
    """{weight name without ":0": array} over every layer of the file."""
    with _open(path) as f:
        root, layers = _weights_root(path, f)
        out: Dict[str, np.ndarray] = {}
        for layer in layers:
            for name, value in _layer_weights(path, root, layer):
                out[name] = value
    return out


class H5NameStore(km.WeightStore):
    """Keras 2 .h5 weights, found by layer name: a leaf layer of a nested model lives in
    its top-level ancestor's group, under "<any prefix>/<layer name>/<variable>"."""

    def __init__(self, path: str, root, layer_names: List[str]):
        self.where = path
        self.root = root
        self.layer_names = set(layer_names)
        self.cache: Dict[str, List[Tuple[str, np.ndarray]]] = {}
        self.used: set = set()

    def _group(self, node: km.Node) -> List[Tuple[str, np.ndarray]]:
        top = node.lineage[0]
        if top not in self.cache:
            if top not in self.layer_names or top not in self.root:
                if node.cls in km.WEIGHTED_CLASSES:
                    raise km.KerasModelError(f"{self.where}: {node.describe()}: no weight group "
                                             f"{top!r} in the file")
                self.cache[top] = []
            else:
                self.cache[top] = _layer_weights(self.where, self.root, top)
        return self.cache[top]

    def named_weights(self, node: km.Node) -> Dict[str, np.ndarray]:
        entries = self._group(node)
        out: Dict[str, np.ndarray] = {}
        for name, value in entries:
            parts = name.split("/")
            if len(node.lineage) == 1 or (len(parts) >= 2 and parts[-2] == node.name):
                if parts[-1] in out:
                    raise km.KerasModelError(f"{self.where}: {node.describe()}: two weights named "
                                             f"{parts[-1]!r} in group {node.lineage[0]!r}")
                out[parts[-1]] = value
                self.used.add((node.lineage[0], name))
        if not out and node.cls in km.WEIGHTED_CLASSES:
            group = node.lineage[0]
            raise km.KerasModelError(
                f"{self.where}: {node.describe()}: no weights in group model_weights/{group} "
                f"({'none at all' if not entries else 'none named ' + repr(node.name + '/...')})")
        return out

    def hub_variables(self, node: km.Node) -> Dict[str, np.ndarray]:
        entries = self._group(node)
        if not entries:
            raise km.KerasModelError(f"{self.where}: {node.describe()}: no weights in group "
                                     f"{node.lineage[0]!r}")
        return {name: value for name, value in entries}


def _unattributed(variables: Dict[str, np.ndarray]) -> List[str]:
    """Weight names that are neither MobileNetV2's (Keras or slim names) nor its top."""
    out = []
    for name in variables:
        parts = name.split("/")
        if "MobilenetV2" in parts:
            continue
        if len(parts) >= 2 and (parts[-2] in km.BASE_NAMES or parts[-2] in _TOP_LAYERS):
            continue
        out.append(name)
    return out


def load_config_file(path: str) -> dict:
    """A model config from a JSON file (model.to_json(), or an archive's config.json) or
    from a .keras archive."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the config ({exc.strerror})") from None
    if data[:4] == b"PK\x03\x04":
        from .keras_archive_reader import archive_config
        return archive_config(path)
    try:
        return km.parse_config(data, path)
    except km.KerasModelError:
        raise
    except ValueError as exc:  # pragma: no cover - parse_config raises KerasModelError
        raise ValueError(f"{path}: {exc}") from None


def read_keras_h5(path: str, resolution: Optional[int] = None,
                  width_multiplier: Optional[float] = None, config=None,
                  labels: Optional[List[str]] = None) -> ir.Network:
    """A Keras 2 .h5: from model.save() (config inside: base, input scaling and the Dense
    head are read) or save_weights() / a keras.applications weight file (weights only;
    `config` — a dict or JSON text from model.to_json() — supplies the model then).
    Resolution: given, else the model's input shape, else a keras.applications file name
    (..._1.0_224.h5), else 224."""
    path = os.fspath(path)
    with _open(path) as f:
        root, layer_names = _weights_root(path, f)
        model_config = _attr_text(f.attrs, "model_config")
        keras_version = _attr_text(f.attrs, "keras_version") or _attr_text(root.attrs, "keras_version")
        source = "file"
        if config is not None:
            model_config, source = config, "--keras-config"
        if model_config is not None:
            root_cfg = km.parse_config(model_config, path)
            graph = km.flatten(root_cfg, path)
            store = H5NameStore(path, root, layer_names)
            header = (f"read Keras {keras_version or '(version not recorded)'} .h5 "
                      f"{root_cfg['class_name']} model '{graph.root.name}' "
                      f"({'model_config in the file' if source == 'file' else 'config from --keras-config'},"
                      " weights by name)")
            claimed = {n.lineage[0] for n in graph.nodes.values()}
            for layer in layer_names:
                if layer not in claimed and layer in root and _attr_list(root[layer], "weight_names"):
                    raise ValueError(f"{path}: weight group {root.name.strip('/') or '(root)'}/{layer} "
                                     "belongs to no layer of the model config")
            return km.build_network(graph, store, where=path, source_format="keras_h5",
                                    resolution=resolution, width_multiplier=width_multiplier,
                                    labels=labels, report_header=header)
        variables: Dict[str, np.ndarray] = {}
        for layer in layer_names:
            for name, value in _layer_weights(path, root, layer):
                variables[name] = value
    extra = _unattributed(variables)
    if extra:
        raise ValueError(f"{path}: weights-only file with layers beyond MobileNetV2 "
                         f"({', '.join(sorted({e.split('/')[-2] if '/' in e else e for e in extra}))}): "
                         "their order and activations are not stored; pass --keras-config "
                         "model.json (from model.to_json())")
    name_width, name_resolution = parse_model_name(os.path.basename(path))
    try:
        net = network_from_variables(
            variables, resolution=resolution or name_resolution,
            width_multiplier=width_multiplier, source=path, source_format="keras_h5")
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    if name_width is not None and abs(name_width - net.width_multiplier) > 1e-6:
        net.notes += f"; file name says width {name_width}, channels say {net.width_multiplier}"
    net.report = [f"read Keras {keras_version or '(version not recorded)'} weights-only .h5 "
                  f"({len(layer_names)} layer groups, no model config): MobileNetV2 weights by name",
                  "input: assumed [-1, 1] (keras.applications.mobilenet_v2.preprocess_input); "
                  f"featx's x in [0, 1] -> {km.affine_text(net.input_scale, net.input_offset)}"]
    if net.classifier is not None:
        net.report.append(f"kept classifier ({net.classifier.num_classes} classes, label offset "
                          f"{net.classifier.label_offset})")
    if labels:
        net.labels = list(labels)
        net.validate()
    return net
