"""A user's whole Keras model saved as a SavedModel (TF 2.x Keras 2,
`model.save('dir')`): the container side of it. keras_model interprets the
layers, as for every other Keras container; this module supplies the config
and the weights.

The layer structure comes from the Keras metadata: `keras_metadata.pb`
(Keras >= 2.5) or, in older saves, the SavedUserObject metadata inside
saved_model.pb (saved_model_proto.py). Each record is one Keras object: its
node path ("root.layer_with_weights-1") and a JSON string with its class and
config; the root's config is the model config keras_model.flatten reads.
Weights (`SavedModelWeights`) are found by walking a layer's node path through
the checkpoint's object graph (the TrackableObjectGraph in variables.index),
whose nodes name their children: a Dense layer's "kernel" and "bias", a
hub.KerasLayer's variables under their TF-slim names
("MobilenetV2/Conv/weights:0"); when the path is not in the graph, by full
variable name ("dense/kernel"). Without Keras metadata, `head_like_variables`
tells saved_model_reader whether a head would be dropped.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import ir
from . import keras_model as km
from . import saved_model_proto as smp
from .mobilenet_names import SCHEMES, network_variables, normalize_names

KERAS_METADATA_FILE = "keras_metadata.pb"
MODEL_IDENTIFIERS = ("_tf_keras_model", "_tf_keras_network", "_tf_keras_sequential")


@dataclass
class KerasObject:
    node_path: str
    identifier: str
    meta: dict

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.meta.get("config", {}).get("name") or "")


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None


def load_keras_objects(model_dir: str) -> Tuple[Optional[List[KerasObject]], str]:
    """(Keras objects, the file they came from), or (None, reason) when the
    SavedModel carries no Keras metadata (a plain TF Hub SavedModel)."""
    meta_path = os.path.join(model_dir, KERAS_METADATA_FILE)
    pb_path = os.path.join(model_dir, "saved_model.pb")
    if os.path.isfile(meta_path):
        data = _read(meta_path)
        try:
            nodes = smp.parse_saved_metadata(data)
        except ValueError as exc:
            raise ValueError(f"{meta_path}: unreadable SavedMetadata proto ({exc}): "
                             "corrupt or not a keras_metadata.pb") from None
        if not nodes:
            raise ValueError(f"{meta_path}: SavedMetadata holds no Keras objects")
        source = meta_path
    elif os.path.isfile(pb_path) and os.path.getsize(pb_path) > 0:
        try:
            _, graphs = smp.parse_saved_model(_read(pb_path))
        except ValueError as exc:
            raise ValueError(f"{pb_path}: unreadable SavedModel proto ({exc})") from None
        serve = [g for g in graphs if "serve" in g.tags] or graphs
        nodes = []
        if serve and serve[0].object_graph is not None:
            nodes = smp.keras_nodes_from_object_graph(serve[0].object_graph)
        if not nodes:
            return None, f"no {KERAS_METADATA_FILE} and no Keras metadata in saved_model.pb"
        source = pb_path
    else:
        return None, f"no {KERAS_METADATA_FILE} and no saved_model.pb"
    objects = []
    for node in nodes:
        try:
            meta = json.loads(node.metadata) if node.metadata else {}
        except ValueError as exc:
            raise ValueError(f"{source}: metadata of {node.node_path or 'a node'} is not JSON "
                             f"({exc})") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{source}: metadata of {node.node_path} is not a JSON object")
        objects.append(KerasObject(node_path=node.node_path, identifier=node.identifier, meta=meta))
    return objects, source


def root_config(objects: List[KerasObject], where: str) -> Tuple[KerasObject, dict]:
    """(the root object, its model config {"class_name", "config": {"layers", ...}})."""
    root = next((o for o in objects if o.node_path == "root"), None)
    if root is None:
        raise ValueError(f"{where}: no Keras object at node path 'root'")
    cls = str(root.meta.get("class_name", ""))
    if root.identifier not in MODEL_IDENTIFIERS:
        raise ValueError(f"{where}: the root object '{root.name}' is a {cls or root.identifier}, "
                         "not a Sequential or functional model")
    config = root.meta.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        config = (root.meta.get("model_config") or {}).get("config")
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ValueError(f"{where}: the root model '{root.name}' ({cls or 'a model'}) has no layer "
                         "list in its Keras metadata (a subclassed model: its layer order is Python "
                         "code); save a Sequential or functional model instead")
    if cls not in km.MODEL_CLASSES:  # a subclass of Sequential / Model that still lists its layers
        cls = "Sequential" if root.identifier == "_tf_keras_sequential" else "Functional"
    return root, {"class_name": cls, "config": config}


class SavedModelWeights(km.WeightStore):
    """A layer's variables in the checkpoint: the node its metadata path leads to in the
    object graph, else by full variable name; every value read is remembered, so what no
    layer read (optimizer slots, ...) can be reported."""

    def __init__(self, where: str, objects: List[KerasObject], ckpt):
        self.where = where
        self.ckpt = ckpt
        by_path = {o.node_path for o in objects}
        # owner node path -> {layer name: node path}, for walking a layer's lineage
        self.children: Dict[str, Dict[str, str]] = {}
        for o in objects:
            if o.node_path == "root" or not o.node_path.startswith("root."):
                continue
            owner = o.node_path.rsplit(".", 1)[0]
            while owner not in by_path and "." in owner:
                owner = owner.rsplit(".", 1)[0]
            self.children.setdefault(owner, {}).setdefault(o.name, o.node_path)
        self.graph = None
        if ckpt.object_graph:
            try:
                self.graph = smp.parse_trackable_object_graph(ckpt.object_graph)
            except ValueError as exc:
                raise ValueError(f"{ckpt.prefix}: unreadable object graph ({exc})") from None
        self.used_keys: set = set()

    def node_path(self, node: km.Node) -> Optional[str]:
        """The layer's path in the Keras metadata ("root.layer_with_weights-0.layer-3")."""
        path = "root"
        for name in node.lineage:
            path = self.children.get(path, {}).get(name)
            if path is None:
                return None
        return path

    def _object(self, node: km.Node) -> Optional[int]:
        path = self.node_path(node)
        if self.graph is None or path is None:
            return None
        return self.graph.walk(path.split(".")[1:])

    def _value(self, key: str) -> np.ndarray:
        self.used_keys.add(key)
        return self.ckpt.read(key)

    def location(self, node: km.Node) -> str:
        path = self.node_path(node)
        return f"the checkpoint ({f'node {path}' if path else 'layer not in the Keras metadata'})"

    def named_weights(self, node: km.Node) -> Dict[str, np.ndarray]:
        """The variables the layer's object owns directly ("kernel", "bias"); by full name
        ("<layer>/kernel") when its path is not in the checkpoint's graph."""
        obj = self._object(node)
        out: Dict[str, np.ndarray] = {}
        if obj is not None:
            for local, child in self.graph.nodes[obj].children:
                key = self.graph.nodes[child].checkpoint_key()
                if key is not None and key in self.ckpt.entries:
                    out[local] = self._value(key)
            return out
        prefix = node.name + "/"
        names = self.ckpt.names or {key: key[:-2] if key.endswith(":0") else key
                                    for key in self.ckpt.entries}
        for key, full in names.items():
            if full.startswith(prefix) and "/" not in full[len(prefix):]:
                out[full[len(prefix):]] = self._value(key)
        return out

    def hub_variables(self, node: km.Node) -> Dict[str, np.ndarray]:
        """A hub.KerasLayer's variables under their module's names: its object's children
        ("MobilenetV2/Conv/weights:0"), else every variable below it, else (its path not
        in the graph) every variable of the checkpoint, by full name."""
        out = self.named_weights(node)
        obj = self._object(node)
        if not out and obj is not None:
            for i in self.graph.subtree(obj):
                key = self.graph.nodes[i].checkpoint_key()
                if key is not None and key in self.ckpt.entries:
                    out[self.graph.nodes[i].full_name() or key] = self._value(key)
        elif not out:
            for key, entry in self.ckpt.entries.items():
                if entry.dtype != 7 and smp.OPTIMIZER_SLOT not in key.split("/"):
                    out[self.ckpt.variable_name(key)] = self._value(key)
        if not out:
            raise km.KerasModelError(f"{self.where}: {node.describe()}: no variables in "
                                     f"{self.location(node)}")
        return out

    def unused_summary(self) -> str:
        """'8 optimizer slots, 5 under optimizer' for the values no layer read."""
        counts: Dict[str, int] = {}
        for key, entry in self.ckpt.entries.items():
            if key in self.used_keys or entry.dtype == 7:  # 7: DT_STRING (the graph itself)
                continue
            if smp.OPTIMIZER_SLOT in key.split("/"):
                what = "optimizer slots"
            else:
                path, _ = smp.split_checkpoint_key(key)
                what = f"under {path[0] if len(path) > 1 else 'the root'}"
            counts[what] = counts.get(what, 0) + 1
        return ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))


def read_keras_saved_model(model_dir: str, ckpt, objects: List[KerasObject], source: str, *,
                           resolution: Optional[int] = None,
                           width_multiplier: Optional[float] = None,
                           fallback_resolution: Optional[int] = None) -> ir.Network:
    """The network of a Keras SavedModel: `objects` and `source` from
    load_keras_objects, `ckpt` its opened variables bundle. Resolution: the
    argument, else the model's input shape, else the base's or Hub handle's
    name, else `fallback_resolution` (from the directory name), else 224."""
    root, config = root_config(objects, source)
    graph = km.flatten(config, model_dir)
    # A model built by calling it on data records its input shape on the root only.
    graph.input_shapes.append((root.name, root.meta.get("build_input_shape")
                               or root.meta.get("batch_input_shape")))
    store = SavedModelWeights(model_dir, objects, ckpt)
    header = (f"keras metadata from {os.path.basename(source)}: {config['class_name']} "
              f"'{root.name}', {len(graph.nodes)} layers")
    net = km.build_network(graph, store, where=model_dir, source_format="saved_model",
                           resolution=resolution, default_resolution=fallback_resolution,
                           width_multiplier=width_multiplier, report_header=header)
    unused = store.unused_summary()
    if unused:
        net.report.append(f"skipped checkpoint values no layer read (training state): {unused}")
    net.notes += f"; Keras model from {os.path.basename(source)}"
    return net


def head_like_variables(variables: Dict[str, np.ndarray], net: ir.Network) -> List[str]:
    """Names of 2-D float variables a base-only read left unused: a Dense head that
    would be dropped when there is no Keras metadata to read it with. Optimizer
    slots ("Adam/dense/kernel/m", ".OPTIMIZER_SLOT" keys) do not count."""
    normalized, _ = normalize_names(variables)
    used: set = set()
    for scheme in SCHEMES:
        if scheme.kernel("stem") in normalized:
            used = set(network_variables(net, scheme))
            break
    out = []
    for raw, value in variables.items():
        name = raw[:-2] if raw.endswith(":0") else raw
        if name in used or any(name.endswith("/" + u) for u in used):
            continue
        if value.ndim == 2 and value.dtype.kind == "f" and "OPTIMIZER_SLOT" not in raw \
                and not re.search(r"(^|/)(Adam|AdamW|SGD|RMSprop|Adagrad|Adadelta|Adamax|Nadam|"
                                  r"Ftrl)/", name):
            out.append(raw)
    return sorted(out)
