"""A user's whole Keras model saved as a SavedModel (TF 2.x Keras 2,
`model.save('dir')`): the MobileNetV2 base, the preprocessing before it and
the Dense head after pooling.

The layer structure comes from the Keras metadata: `keras_metadata.pb`
(Keras >= 2.5) or, in older saves, the SavedUserObject metadata inside
saved_model.pb (saved_model_proto.py). Each record is one Keras object: its
node path ("root.layer_with_weights-1") and a JSON string with its class and
config; the root's config lists the layers in order. Weights are found by
walking that node path through the checkpoint's object graph (the
TrackableObjectGraph in variables.index), whose nodes name their children:
a Dense layer's "kernel" and "bias", a hub.KerasLayer's variables under
their TF-slim names ("MobilenetV2/Conv/weights:0"), a Conv2D's "kernel".

What is kept, skipped or refused (docs/saved_model.md has the details):
  before the base   InputLayer; Rescaling and TFOpLambda scalar arithmetic
                    (x / 127.5 - 1) change the input normalisation; random
                    augmentation layers (identity at inference) are skipped
  the base          a hub.KerasLayer (pooled feature vector), a nested
                    keras.applications MobileNetV2, or its layers inline
  before pooling    GlobalAveragePooling2D (the feature vector); Dropout
  after pooling     Dense (linear, relu, relu6, softmax; bias optional);
                    Activation / Softmax / ReLU folded into a linear Dense;
                    Dropout-like layers and Flatten skipped
Anything else is a one-line ValueError naming the directory and the layer.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import ir
from . import saved_model_proto as smp
from .mobilenet_names import (INPUT_OFFSET, INPUT_SCALE, SCHEMES, KerasScheme,
                              network_from_variables,
                              network_variables, normalize_names, parse_model_name)

KERAS_METADATA_FILE = "keras_metadata.pb"
MODEL_IDENTIFIERS = ("_tf_keras_model", "_tf_keras_network", "_tf_keras_sequential")
CONTAINER_CLASSES = ("Functional", "Model", "Sequential")
HUB_LAYER_CLASSES = ("KerasLayer",)
# Identity at inference: skipped with a report line.
INFERENCE_IDENTITY = ("Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise",
                      "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                      "ActivityRegularization")
AUGMENTATION = ("RandomFlip", "RandomRotation", "RandomZoom", "RandomContrast",
                "RandomTranslation", "RandomBrightness")
# tf.keras.applications.MobileNetV2's layer names (TF 2.x); the base is the run of these.
_KERAS_BASE_LAYER = re.compile(
    r"^(Conv1(_pad|_relu)?|bn_Conv1|expanded_conv_(depthwise|project)(_BN|_relu)?|"
    r"block_\d+_(expand|depthwise|project|pad|add)(_BN|_relu)?|Conv_1(_bn)?|out_relu)$")
# TFOpLambda functions that preprocess_input-style code leaves before the base (x op y).
_SCALAR_OPS = {
    "math.truediv": lambda a, b, y: (a / y, b / y),
    "math.multiply": lambda a, b, y: (a * y, b * y),
    "math.subtract": lambda a, b, y: (a, b - y),
    "math.add": lambda a, b, y: (a, b + y),
    "__operators__.add": lambda a, b, y: (a, b + y),
}
# Pixel range assumed for a model whose first layers rescale its input (Keras
# image pipelines feed 0..255 pixels); featx's input x in [0, 1] is pixel / 255.
PIXEL_RANGE = 255.0


@dataclass
class KerasObject:
    node_path: str
    identifier: str
    meta: dict

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.meta.get("config", {}).get("name") or "")


@dataclass
class Layer:
    class_name: str
    name: str
    config: dict
    node_path: Optional[str]  # where the Keras metadata puts it; None when not found
    inbound: list = field(default_factory=list)  # Functional inbound_nodes, raw
    container: str = ""  # the nested model it came from ("" at the top level)


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


def _inbound_names(inbound) -> List[List[str]]:
    """Layer names feeding each call of a Functional layer (Keras 2 list format:
    [[["input_1", 0, 0, {kwargs}], ...], ...])."""
    calls = []
    for node in inbound or []:
        names = []
        if isinstance(node, list):
            for entry in node:
                if isinstance(entry, list) and entry and isinstance(entry[0], str):
                    names.append(entry[0])
        elif isinstance(node, dict):  # newer serialisations: keras_history inside args
            text = json.dumps(node)
            names += re.findall(r'"keras_history": \["([^"]+)"', text)
        calls.append(names)
    return calls


def _inbound_kwargs(inbound) -> dict:
    """The call's keyword arguments (TFOpLambda's constant y)."""
    for node in inbound or []:
        if isinstance(node, list):
            for entry in node:
                if isinstance(entry, list) and len(entry) >= 4 and isinstance(entry[3], dict):
                    return entry[3]
        elif isinstance(node, dict) and isinstance(node.get("kwargs"), dict):
            return node["kwargs"]
    return {}


class KerasSavedModel:
    """The Keras metadata of one SavedModel plus its checkpoint's object graph."""

    def __init__(self, model_dir: str, objects: List[KerasObject], source: str, ckpt):
        self.dir = model_dir
        self.source = source
        self.ckpt = ckpt
        self.report: List[str] = []
        self.by_path = {o.node_path: o for o in objects}
        self.root = self.by_path.get("root")
        if self.root is None:
            raise ValueError(f"{source}: no Keras object at node path 'root'")
        self.children: Dict[str, Dict[str, str]] = {}  # owner node path -> {layer name: path}
        for o in objects:
            if o.node_path == "root" or not o.node_path.startswith("root."):
                continue
            owner = o.node_path.rsplit(".", 1)[0]
            while owner not in self.by_path and "." in owner:
                owner = owner.rsplit(".", 1)[0]
            self.children.setdefault(owner, {}).setdefault(o.name, o.node_path)
        self.graph = None
        if ckpt.object_graph:
            try:
                self.graph = smp.parse_trackable_object_graph(ckpt.object_graph)
            except ValueError as exc:
                raise ValueError(f"{ckpt.prefix}: unreadable object graph ({exc})") from None
        self.used_keys: set = set()

    def fail(self, message: str):
        raise ValueError(f"{self.dir}: {message}")

    # ---- structure ------------------------------------------------------------------------

    def layers(self) -> List[Layer]:
        """The model's layers in order, nested Functional / Sequential models expanded."""
        root = self.root
        if root.identifier not in MODEL_IDENTIFIERS:
            return [Layer(str(root.meta.get("class_name", "")), root.name,
                          root.meta.get("config") or {}, "root")]
        config = root.meta.get("config")
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            config = (root.meta.get("model_config") or {}).get("config")
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            self.fail(f"the root model '{root.name}' ({root.meta.get('class_name', 'a model')}) "
                      "has no layer list in its Keras metadata (a subclassed model: its layer "
                      "order is Python code); save a Sequential or functional model instead")
        return self._flatten("root", config, root.name, "")

    def _flatten(self, path: Optional[str], config: dict, where: str,
                 container: str) -> List[Layer]:
        out: List[Layer] = []
        previous = None
        for entry in config["layers"]:
            if not isinstance(entry, dict):
                self.fail(f"model '{where}': a layer entry is not a JSON object")
            cls = str(entry.get("class_name", ""))
            cfg = entry.get("config") if isinstance(entry.get("config"), dict) else {}
            name = str(cfg.get("name") or entry.get("name") or "")
            node_path = self.children.get(path, {}).get(name) if path else None
            inbound = entry.get("inbound_nodes") or []
            calls = _inbound_names(inbound)
            if len(calls) > 1:
                self.fail(f"layer '{name}' ({cls}) is called {len(calls)} times in '{where}': "
                          "only a straight chain of layers is read")
            # MobileNetV2's own residual Adds are not a chain; everything else must be.
            if calls and previous is not None and calls[0] != [previous] \
                    and not _KERAS_BASE_LAYER.match(name):
                self.fail(f"layer '{name}' ({cls}) in '{where}' takes {calls[0]} rather than the "
                          f"layer before it ('{previous}'): only a straight chain of layers is "
                          "read")
            if cls in CONTAINER_CLASSES and isinstance(cfg.get("layers"), list):
                out += self._flatten(node_path, cfg, name, name)
            else:
                out.append(Layer(cls, name, cfg, node_path, inbound, container))
            previous = name
        return out

    # ---- variables ------------------------------------------------------------------------

    def _node(self, layer: Layer) -> Optional[int]:
        if self.graph is None or not layer.node_path:
            return None
        return self.graph.walk(layer.node_path.split(".")[1:])

    def _value(self, key: str) -> np.ndarray:
        self.used_keys.add(key)
        return self.ckpt.read(key)

    def layer_variables(self, layer: Layer) -> Dict[str, np.ndarray]:
        """{local name: array} of the variables the layer's object owns directly
        ("kernel", "bias", "MobilenetV2/Conv/weights:0"); through the object graph,
        else by full name ("<layer>/kernel") for checkpoints without one."""
        node = self._node(layer)
        out: Dict[str, np.ndarray] = {}
        if node is not None:
            for local, child in self.graph.nodes[node].children:
                key = self.graph.nodes[child].checkpoint_key()
                if key is not None and key in self.ckpt.entries:
                    out[local] = self._value(key)
            return out
        prefix = layer.name + "/"
        for key, full in self.ckpt.names.items():
            if full.startswith(prefix) and "/" not in full[len(prefix):]:
                out[full[len(prefix):]] = self._value(key)
        if not self.ckpt.names:
            for key in self.ckpt.entries:
                name = key[:-2] if key.endswith(":0") else key
                if name.startswith(prefix) and "/" not in name[len(prefix):]:
                    out[name[len(prefix):]] = self._value(key)
        return out

    def subtree_variables(self, layer: Layer) -> Dict[str, np.ndarray]:
        """Every variable below the layer's object, by full name (the fallback for a
        hub.KerasLayer whose variables are not its direct children)."""
        node = self._node(layer)
        out: Dict[str, np.ndarray] = {}
        if node is None:  # the path is not in the checkpoint's graph: every variable by name
            for key, entry in self.ckpt.entries.items():
                if entry.dtype != 7 and smp.OPTIMIZER_SLOT not in key.split("/"):
                    out[self.ckpt.variable_name(key)] = self._value(key)
            return out
        for i in self.graph.subtree(node):
            key = self.graph.nodes[i].checkpoint_key()
            if key is not None and key in self.ckpt.entries:
                out[self.graph.nodes[i].full_name() or key] = self._value(key)
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


def _activation(value) -> str:
    """A Keras activation config ('relu', None, {'class_name': 'relu', ...}) as a name."""
    if value is None:
        return "linear"
    if isinstance(value, dict):
        value = value.get("config", {}).get("name") if value.get("class_name") == "function" \
            else value.get("class_name")
    return str(value or "linear")


def _affine(a: float, b: float) -> str:
    """'2 x - 1' for internal = a x + b."""
    return f"{a:.9g} x {'-' if b < 0 else '+'} {abs(b):.9g}"


def _scalar(value) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _resolution(layers: List[Layer], root: KerasObject) -> Optional[int]:
    """The model's input height, from an InputLayer, a batch_input_shape or the build shape."""
    shapes = []
    for layer in layers[:1]:
        shapes.append(layer.config.get("batch_input_shape") or layer.config.get("batch_shape"))
    shapes += [root.meta.get("build_input_shape"), root.meta.get("batch_input_shape")]
    for layer in layers:
        shapes.append(layer.config.get("batch_input_shape"))
    for shape in shapes:
        if isinstance(shape, dict):  # TensorShape serialised as {"class_name": "TensorShape", ...}
            shape = shape.get("items")
        if isinstance(shape, list) and len(shape) == 4 and isinstance(shape[1], int) \
                and shape[1] > 0:
            return int(shape[1])
    return None


def read_keras_saved_model(model_dir: str, ckpt, objects: List[KerasObject], source: str, *,
                           resolution: Optional[int] = None,
                           width_multiplier: Optional[float] = None,
                           fallback_resolution: Optional[int] = None) -> ir.Network:
    """The network of a Keras SavedModel: `objects` and `source` from
    load_keras_objects, `ckpt` its opened variables bundle. Resolution: the
    argument, else the model's input shape, else a Hub handle's name, else
    `fallback_resolution` (from the directory name), else 224."""
    km = KerasSavedModel(model_dir, objects, source, ckpt)
    layers = km.layers()
    report = [f"keras metadata from {os.path.basename(source)}: "
              f"{km.root.meta.get('class_name', km.root.identifier)} '{km.root.name}', "
              f"{len(layers)} layers"]
    scale, offset = 1.0, 0.0  # what the layers before the base do to the model's input
    rescaled = False
    base: List[Layer] = []
    base_kind = ""
    i = 0
    # ---- before the base
    while i < len(layers):
        layer = layers[i]
        cls = layer.class_name
        if cls == "InputLayer":
            pass
        elif cls == "Rescaling":
            s, o = _scalar(layer.config.get("scale", 1.0)), _scalar(layer.config.get("offset", 0.0))
            if s is None or o is None:
                km.fail(f"Rescaling layer '{layer.name}': scale {layer.config.get('scale')!r} / "
                        f"offset {layer.config.get('offset')!r} are not scalars (per-channel "
                        "rescaling is not supported)")
            scale, offset, rescaled = s * scale, s * offset + o, True
            report.append(f"kept rescaling '{layer.name}' (x * {s:.9g} + {o:.9g}) in the input "
                          "normalisation")
        elif cls == "TFOpLambda" and layer.config.get("function") in _SCALAR_OPS:
            fn = layer.config["function"]
            y = _scalar(_inbound_kwargs(layer.inbound).get("y"))
            if y is None or (fn == "math.truediv" and y == 0.0):
                km.fail(f"layer '{layer.name}' (TFOpLambda {fn}) before the base: only "
                        "arithmetic with a constant number is read")
            scale, offset = _SCALAR_OPS[fn](scale, offset, y)
            rescaled = True
            report.append(f"kept '{layer.name}' ({fn} {y:.9g}) in the input normalisation")
        elif cls in AUGMENTATION:
            report.append(f"skipped {cls} '{layer.name}' (augmentation, identity at inference)")
        elif cls in HUB_LAYER_CLASSES or cls.endswith(">KerasLayer"):
            base, base_kind = [layer], "hub"
            i += 1
            break
        elif _KERAS_BASE_LAYER.match(layer.name):
            base_kind = "keras"
            while i < len(layers) and _KERAS_BASE_LAYER.match(layers[i].name):
                base.append(layers[i])
                i += 1
            break
        else:
            km.fail(f"layer '{layer.name}' ({cls}) before the MobileNetV2 base is not supported "
                    "(featx reads InputLayer, Rescaling, x / c - c arithmetic and random "
                    "augmentation there)")
        i += 1
    if not base:
        km.fail("no MobileNetV2 base (a hub.KerasLayer or keras.applications MobileNetV2 "
                "layers Conv1 ... out_relu) among the layers "
                f"{', '.join(repr(l.name) for l in layers[:8])}")

    # ---- the base
    if base_kind == "hub":
        layer = base[0]
        variables = km.layer_variables(layer)
        if not variables:
            variables = km.subtree_variables(layer)
        if not variables:
            km.fail(f"hub.KerasLayer '{layer.name}' has no variables in the checkpoint "
                    f"(node {layer.node_path or 'not in the metadata'})")
        handle = str(layer.config.get("handle", ""))
        hint_width, hint_res = parse_model_name(handle)
    else:
        variables = {}
        for layer in base:
            for local, value in km.layer_variables(layer).items():
                variables[f"{layer.name}/{local}"] = value
        hint_width, hint_res = None, None
        layer = base[0]
    res = resolution or _resolution(layers, km.root) or hint_res or fallback_resolution
    try:
        net = network_from_variables(variables, resolution=res, width_multiplier=width_multiplier,
                                     source=model_dir, source_format="saved_model")
    except ValueError as exc:
        km.fail(f"base {'hub.KerasLayer ' if base_kind == 'hub' else ''}'{layer.name}': {exc}")
    if res is None:
        net.notes += "; no input shape in the Keras metadata"
    if hint_width is not None and abs(hint_width - net.width_multiplier) > 1e-6:
        net.notes += f"; handle says width {hint_width}, channels say {net.width_multiplier}"
    scheme_name = net.notes.split(" ", 1)[0]  # network_from_variables starts with "slim ..."
    if base_kind == "hub":
        report.append(f"kept base hub.KerasLayer '{layer.name}' ({len(variables)} "
                      f"{scheme_name}-named variables{', handle ' + handle if handle else ''}): "
                      f"MobileNetV2 width {net.width_multiplier}, {net.feature_dim} features")
    else:
        where = f" '{base[0].container}'" if base[0].container else ""
        report.append(f"kept base keras.applications MobileNetV2{where} (layers "
                      f"'{base[0].name}' ... '{base[-1].name}', {len(variables)} Keras-named "
                      f"variables): width {net.width_multiplier}, {net.feature_dim} features")

    if base_kind == "keras":
        _set_epsilons(km, net, base, report)

    # ---- input normalisation: internal = input_scale * x + input_offset, x in [0, 1]
    if rescaled:
        # The model takes pixels u = 255 x; the layers give v = scale * u + offset to the base.
        a, b = scale * PIXEL_RANGE, offset
        if base_kind == "hub":  # a Hub feature vector maps its [0, 1] input v to 2 v - 1
            a, b = 2.0 * a, 2.0 * b - 1.0
        net.input_scale, net.input_offset = float(a), float(b)
        report.append(f"input: the model rescales 0..255 pixels itself; featx x in [0, 1] -> "
                      f"internal = {_affine(net.input_scale, net.input_offset)}")
    else:
        net.input_scale, net.input_offset = INPUT_SCALE, INPUT_OFFSET
        report.append("input: " + ("hub.KerasLayer takes [0, 1] (x * 2 - 1 inside)"
                                   if base_kind == "hub" else
                                   "keras.applications MobileNetV2 takes [-1, 1] "
                                   "(preprocess_input outside the model)")
                      + f"; featx x in [0, 1] -> internal = {_affine(INPUT_SCALE, INPUT_OFFSET)}")

    # ---- the classifier a hub classification model brings
    pooled = base_kind == "hub"
    width = net.feature_dim
    head: List[ir.Dense] = []
    if net.classifier is not None:
        rest = [l for l in layers[i:] if l.class_name not in INFERENCE_IDENTITY + ("Flatten",)]
        if rest:  # the logits feed the user's layers: they are the head's first layer
            c = net.classifier
            head.append(ir.Dense(name="Logits", weights=c.weights, bias=c.bias,
                                 activation="linear"))
            net.classifier = None
            width = head[-1].out_features
            report.append(f"kept the base's logits as dense 'Logits' {net.feature_dim} -> "
                          f"{width} linear")
        else:
            report.append(f"kept the base's classifier ({net.classifier.num_classes} classes)")

    # ---- after the base
    for layer in layers[i:]:
        cls = layer.class_name
        if cls in INFERENCE_IDENTITY:
            report.append(f"skipped {cls.lower()} '{layer.name}' (identity at inference)")
        elif not pooled:
            if cls in ("GlobalAveragePooling2D", "GlobalAvgPool2D"):
                pooled = True
                report.append(f"kept global average pooling '{layer.name}' as the feature vector")
            else:
                km.fail(f"layer '{layer.name}' ({cls}) after the MobileNetV2 base: featx needs "
                        "GlobalAveragePooling2D first (the feature vector is the mean over H, W)")
        elif cls == "Flatten":
            report.append(f"skipped flatten '{layer.name}' (the pooled vector is already flat)")
        elif cls == "Dense":
            head.append(_dense(km, layer, width))
            width = head[-1].out_features
            d = head[-1]
            report.append(f"kept dense '{d.name}' {d.in_features} -> {d.out_features} "
                          f"{d.activation}{' +bias' if d.bias is not None else ' (no bias)'}")
        elif cls in ("Activation", "Softmax", "ReLU"):
            act = _activation_layer(km, layer)
            if not head or head[-1].activation != "linear":
                km.fail(f"{cls} layer '{layer.name}' ({act}) does not follow a linear Dense: "
                        "featx applies activations inside a Dense layer only")
            head[-1].activation = act
            report.append(f"kept {cls.lower()} '{layer.name}' as the {act} of dense "
                          f"'{head[-1].name}'")
        else:
            km.fail(f"layer '{layer.name}' ({cls}) after pooling is not supported (featx runs "
                    "Dense layers there, and skips Dropout and Flatten)")
    if not pooled:
        km.fail(f"the model ends at '{layers[-1].name}' without GlobalAveragePooling2D after the "
                "MobileNetV2 base")

    # keras.applications' own top (include_top=True, nothing after): keep it as the
    # classifier, like --keras-h5 does, so 1000 ImageNet classes keep their label offset.
    if (base_kind == "keras" and len(head) == 1 and head[0].name in ("predictions", "Logits")
            and head[0].activation in ("softmax", "linear") and net.classifier is None):
        d = head.pop()
        net.classifier = ir.Classifier(weights=d.weights, bias=d.bias,
                                       label_offset=1 if d.out_features == 1000 else 0)
        report[-1] = (f"kept keras.applications top '{d.name}' as the classifier "
                      f"({d.out_features} classes)")
    net.dense_head = head
    unused = km.unused_summary()
    if unused:
        report.append(f"skipped checkpoint values no layer read (training state): {unused}")
    net.report = report
    net.notes += f"; Keras model from {os.path.basename(source)}"
    try:
        net.validate()
    except ValueError as exc:
        km.fail(str(exc))
    return net


def _set_epsilons(km: KerasSavedModel, net: ir.Network, base: List[Layer],
                  report: List[str]) -> None:
    """Batch-norm epsilon from each BatchNormalization layer's config (Keras MobileNetV2
    builds them with 1e-3, which is also network_from_variables' default)."""
    scheme = KerasScheme()
    convs = {scheme.bn("stem", "x").rsplit("/", 1)[0]: net.stem,
             scheme.bn("head", "x").rsplit("/", 1)[0]: net.head}
    for i, block in enumerate(net.blocks):
        for role, conv in (("expand", block.expand), ("depthwise", block.depthwise),
                           ("project", block.project)):
            if conv is not None:
                convs[scheme.bn((role, i), "x").rsplit("/", 1)[0]] = conv
    changed = []
    for layer in base:
        conv = convs.get(layer.name)
        eps = _scalar(layer.config.get("epsilon"))
        if layer.class_name != "BatchNormalization" or conv is None or conv.batch_norm is None \
                or eps is None:
            continue
        if eps <= 0.0:
            km.fail(f"BatchNormalization '{layer.name}': epsilon {eps} is not positive")
        if eps != conv.batch_norm.epsilon:
            conv.batch_norm.epsilon = eps
            changed.append(layer.name)
    if changed:
        report.append(f"batch-norm epsilon from the layer configs ({len(changed)} layers, e.g. "
                      f"'{changed[0]}' {convs[changed[0]].batch_norm.epsilon:g})")


def _activation_layer(km: KerasSavedModel, layer: Layer) -> str:
    cfg = layer.config
    if layer.class_name == "Softmax":
        act = "softmax"
    elif layer.class_name == "ReLU":
        if _scalar(cfg.get("negative_slope", 0.0)) or _scalar(cfg.get("threshold", 0.0)):
            km.fail(f"ReLU layer '{layer.name}' has a negative slope or threshold, which featx "
                    "does not run")
        cap = cfg.get("max_value")
        act = "relu" if cap is None else ("relu6" if _scalar(cap) == 6.0 else f"relu(max {cap})")
    else:
        act = _activation(cfg.get("activation"))
    if act not in ir.DENSE_ACTIVATIONS:
        km.fail(f"layer '{layer.name}' ({layer.class_name}): activation {act!r} is not supported "
                f"(featx runs {', '.join(ir.DENSE_ACTIVATIONS)})")
    return act


def _dense(km: KerasSavedModel, layer: Layer, width: int) -> ir.Dense:
    cfg = layer.config
    act = _activation(cfg.get("activation"))
    if act not in ir.DENSE_ACTIVATIONS:
        km.fail(f"dense layer '{layer.name}': activation {act!r} is not supported (featx runs "
                f"{', '.join(ir.DENSE_ACTIVATIONS)})")
    units = cfg.get("units")
    use_bias = cfg.get("use_bias", True)
    variables = km.layer_variables(layer)
    where = f"(node {layer.node_path})" if layer.node_path else "(not in the Keras metadata)"
    kernel = variables.get("kernel")
    if kernel is None:
        km.fail(f"dense layer '{layer.name}': no kernel variable in the checkpoint {where}")
    kernel = np.asarray(kernel, dtype=np.float32)
    if kernel.ndim != 2 or (isinstance(units, int) and kernel.shape[1] != units):
        km.fail(f"dense layer '{layer.name}': kernel shape {list(kernel.shape)} does not match "
                f"[inputs, {units}] units")
    if kernel.shape[0] != width:
        km.fail(f"dense layer '{layer.name}': kernel {list(kernel.shape)} takes {kernel.shape[0]} "
                f"inputs, but the layer before it gives {width}")
    bias = None
    if use_bias:
        if "bias" not in variables:
            km.fail(f"dense layer '{layer.name}': use_bias is true but there is no bias variable "
                    f"in the checkpoint {where}")
        bias = np.asarray(variables["bias"], dtype=np.float32).reshape(-1)
        if bias.shape != (kernel.shape[1],):
            km.fail(f"dense layer '{layer.name}': bias shape {list(bias.shape)} does not match "
                    f"{kernel.shape[1]} units")
    return ir.Dense(name=layer.name, weights=np.ascontiguousarray(kernel.T), bias=bias,
                    activation=act)


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
