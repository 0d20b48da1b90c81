"""A whole Keras model (its JSON config plus its weights) -> ir.Network.

The one Keras-config interpreter, shared by every container: the Keras 2 /
tf.keras full-model .h5 (config in the root attribute `model_config`, weights
by name, keras_h5_reader), the .keras archive of Keras 3 and of tf.keras
2.12-2.15 (config.json, weights by position in model.weights.h5) and a bare
.weights.h5 plus its config (keras_archive_reader), and a Keras 2 SavedModel
(the root's config in keras_metadata.pb, weights through the checkpoint's
object graph, keras_saved_model). Each container supplies a `WeightStore`;
everything else is here:

1. `flatten` turns the config into one graph of leaf layers: nested
   Sequential / Functional models are expanded in place (their input layers
   become the tensors fed to them), so Sequential([Sequential([base, pool]),
   Sequential([Dense, Dense])]) and Model(base.input, Dense(pool(base.output)))
   give the same graph. While walking it also works out where a Keras 3 or
   tf.keras archive stores each layer's variables (class-based names with a
   counter per class within each container, see `flatten`).
2. `build_network` finds the MobileNetV2 base (keras.applications layer
   names: Conv1, bn_Conv1, expanded_conv_depthwise, block_N_expand, ...,
   Conv_1, Conv_1_bn, out_relu; or a TF Hub KerasLayer), checks its wiring
   and layer settings against the standard network, reads the input scaling
   from the layers before it (Rescaling) and the user's head after it
   (global average pooling, Dense layers with their activations; Dropout,
   Flatten and similar inference no-ops skipped). Anything else on the path
   is a one-line ValueError naming the file and the layer; every kept or
   skipped layer gets a line in net.report.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import ir
from .mobilenet_names import (KerasScheme, block_strides, named_convs, network_from_variables,
                              parse_model_name)

MODEL_CLASSES = ("Sequential", "Functional", "Model")
# Layers whose `weights` list is not empty once built (tf.keras 2.12/2.13 count them twice when
# naming archive groups, see flatten).
WEIGHTED_CLASSES = frozenset((
    "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose",
    "Dense", "EinsumDense", "BatchNormalization", "LayerNormalization", "GroupNormalization",
    "Normalization", "Embedding", "PReLU", "KerasLayer", "MultiHeadAttention", "LSTM", "GRU",
    "SimpleRNN"))
# Identity at inference: skipped with a report line.
INFERENCE_NOOPS = frozenset((
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ActivityRegularization"))
AUGMENTATION_NOOPS = frozenset((
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
    "RandomBrightness", "RandomHeight", "RandomWidth"))


def is_hub_layer(cls: str) -> bool:
    """tensorflow_hub's KerasLayer, under its class name or a registered "hub>KerasLayer"."""
    return cls == "KerasLayer" or cls.endswith(">KerasLayer")


class KerasModelError(ValueError):
    """A model featx cannot represent; str() is one line naming the file and the layer."""


# ----------------------------------------------------------------------------- config access

@dataclass
class Entry:
    """One element of a model config's "layers" list, in any Keras dialect."""
    cls: str
    name: str
    config: dict
    inbound: list  # the "inbound_nodes" value (Functional members only)
    module: str = ""

    @property
    def is_model(self) -> bool:
        return self.cls in MODEL_CLASSES and isinstance(self.config.get("layers"), list)

    @property
    def is_op(self) -> bool:
        """A Keras 3 operation in a Functional graph (x / 127.5 on a KerasTensor): listed in
        the config, but not a layer, so not in Functional.layers nor in the weights file."""
        return self.module.startswith(("keras.src.ops", "keras.ops"))


def parse_config(text, where: str) -> dict:
    """The top-level {"class_name", "config"} dict of a model config (JSON text or a dict)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if isinstance(text, str):
        try:
            text = json.loads(text)
        except ValueError as exc:
            raise KerasModelError(f"{where}: model config is not JSON ({exc})") from None
    if not isinstance(text, dict) or "class_name" not in text or not isinstance(text.get("config"), dict):
        raise KerasModelError(f"{where}: model config has no class_name/config at the top")
    return text


def _entry(raw, where: str) -> Entry:
    if not isinstance(raw, dict) or "class_name" not in raw:
        raise KerasModelError(f"{where}: a layer entry without class_name in the model config")
    config = raw.get("config") if isinstance(raw.get("config"), dict) else {}
    name = raw.get("name") or config.get("name") or ""
    return Entry(cls=str(raw["class_name"]), name=str(name), config=config,
                 inbound=raw.get("inbound_nodes") or [], module=str(raw.get("module") or ""))


def tensor_refs(obj) -> List[Tuple[str, int, int]]:
    """(layer name, node index, tensor index) of every tensor an inbound node or an
    input_layers/output_layers value refers to, in order. Keras 2 writes them as
    [name, node, tensor(, kwargs)] lists at any nesting depth, Keras 3 as
    {"class_name": "__keras_tensor__", "config": {"keras_history": [name, node, tensor]}}."""
    refs: List[Tuple[str, int, int]] = []

    def walk(o):
        if isinstance(o, dict):
            if o.get("class_name") == "__keras_tensor__":
                h = (o.get("config") or {}).get("keras_history") or []
                if len(h) >= 3:
                    refs.append((str(h[0]), int(h[1]), int(h[2])))
                return
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            if (len(o) in (3, 4) and isinstance(o[0], str) and isinstance(o[1], int)
                    and isinstance(o[2], int) and (len(o) == 3 or isinstance(o[3], dict))):
                if o[0] != "_CONSTANT_VALUE":
                    refs.append((o[0], o[1], o[2]))
                return
            for v in o:
                walk(v)

    walk(obj)
    return refs


def node_kwargs(inbound: list) -> dict:
    """The call kwargs of a layer's only inbound node (Keras 2: the 4th element of the
    first tensor reference; Keras 3: the node's "kwargs")."""
    if not inbound:
        return {}
    node = inbound[0]
    if isinstance(node, dict):
        return node.get("kwargs") or {}
    while isinstance(node, list) and node and isinstance(node[0], list):
        node = node[0]
    if isinstance(node, list) and len(node) == 4 and isinstance(node[3], dict):
        return node[3]
    return {}


def keras3_snake_case(name: str) -> str:
    """keras.src.utils.naming.to_snake_case (Keras 3)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def tf_keras_snake_case(name: str) -> str:
    """keras.src.utils.generic_utils.to_snake_case (tf.keras 2.x)."""
    intermediate = re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    insecure = re.sub("([a-z])([A-Z])", r"\1_\2", intermediate).lower()
    return insecure if insecure[:1] != "_" else "private" + insecure


# ----------------------------------------------------------------------------- the flat graph

@dataclass
class Node:
    id: str                 # unique: enclosing model names and the layer name, "/"-joined
    name: str               # the Keras layer name
    cls: str
    config: dict
    inputs: List[str]       # node ids
    lineage: Tuple[str, ...]  # names from the root's child down to this layer
    archive_path: str = ""  # where a .keras archive keeps its variables ("" for Keras 2 .h5)
    kwargs: dict = field(default_factory=dict)
    args: list = field(default_factory=list)  # Keras 3 call args (tensors and constants)
    is_op: bool = False

    def describe(self) -> str:
        return f"layer '{self.name}' ({self.cls})"


@dataclass
class ArchiveNaming:
    """How a .keras archive names layer groups. Keras 3: "layers/<snake class>[_<n>]";
    tf.keras 2.12-2.15: "_layer_checkpoint_dependencies/...". tf.keras 2.12/2.13 walk the
    Functional._layer_checkpoint_dependencies dict, which lists a layer with weights twice
    ("layer_with_weights-k" and "layer-i") and count both occurrences, so such layers use
    every other counter value (dense, dense_2, ...); 2.14+ skip the repeat (dense, dense_1)."""
    container: str
    doubled: bool
    snake: object


KERAS3_NAMING = ArchiveNaming("layers", False, keras3_snake_case)
TF_KERAS_NAMING = ArchiveNaming("_layer_checkpoint_dependencies", False, tf_keras_snake_case)
TF_KERAS_213_NAMING = ArchiveNaming("_layer_checkpoint_dependencies", True, tf_keras_snake_case)


@dataclass
class Graph:
    nodes: Dict[str, Node]      # insertion order is a topological order
    inputs: List[str]
    output: str
    root: Entry
    input_shapes: List[Tuple[str, list]]  # (input layer name, batch shape) for every InputLayer seen
    models: List[Tuple[Tuple[str, ...], str]]  # (lineage, class) of every nested model


def _has_weights(entry: Entry) -> bool:
    if entry.is_model:
        return any(_has_weights(_entry(e, "")) for e in entry.config.get("layers", []))
    return entry.cls in WEIGHTED_CLASSES


class _Flattener:
    def __init__(self, where: str, naming: Optional[ArchiveNaming]):
        self.where = where
        self.naming = naming
        self.nodes: Dict[str, Node] = {}
        self.inputs: List[str] = []
        self.input_shapes: List[Tuple[str, list]] = []
        self.models: List[Tuple[Tuple[str, ...], str]] = []

    def _fail(self, message: str):
        raise KerasModelError(f"{self.where}: {message}")

    def _segments(self, container: Sequence[Entry]) -> List[str]:
        if self.naming is None:
            return [""] * len(container)
        counts: Dict[str, int] = {}
        out = []
        for e in container:
            if e.is_op:
                out.append("")
                continue
            base = self.naming.snake(e.cls)
            n = counts.get(base, 0)
            out.append(base if n == 0 else f"{base}_{n}")
            counts[base] = n + (2 if self.naming.doubled and _has_weights(e) else 1)
        return out

    def _path(self, parent_path: str, segment: str) -> str:
        if self.naming is None or not segment:
            return ""
        inner = f"{self.naming.container}/{segment}"
        return f"{parent_path}/{inner}" if parent_path else inner

    def _add(self, entry: Entry, lineage, inputs, path) -> str:
        node_id = "/".join(lineage)
        if node_id in self.nodes:
            self._fail(f"two layers named {node_id!r} in one model")
        first = entry.inbound[0] if entry.inbound else None
        self.nodes[node_id] = Node(id=node_id, name=entry.name, cls=entry.cls, config=entry.config,
                                   inputs=list(inputs), lineage=tuple(lineage), archive_path=path,
                                   kwargs=node_kwargs(entry.inbound), is_op=entry.is_op,
                                   args=list(first.get("args") or []) if isinstance(first, dict) else [])
        return node_id

    def _input(self, entry: Entry, lineage) -> str:
        shape = entry.config.get("batch_shape") or entry.config.get("batch_input_shape")
        self.input_shapes.append((entry.name, shape))
        node_id = self._add(entry, lineage, [], "")
        self.inputs.append(node_id)
        return node_id

    def model(self, entry: Entry, lineage: Tuple[str, ...], path: str,
              parent_inputs: Optional[List[str]]) -> str:
        if lineage:
            self.models.append((lineage, entry.cls))
        entries = [_entry(e, self.where) for e in entry.config.get("layers", [])]
        if not entries:
            self._fail(f"model '{entry.name}' has no layers")
        if entry.cls == "Sequential":
            return self._sequential(entry, entries, lineage, path, parent_inputs)
        return self._functional(entry, entries, lineage, path, parent_inputs)

    def _sequential(self, entry, entries, lineage, path, parent_inputs) -> str:
        # Sequential.layers (what archives store) leaves out the leading InputLayer.
        container = entries[1:] if entries[0].cls == "InputLayer" else entries
        segments = dict(zip(map(id, container), self._segments(container)))
        prev = list(parent_inputs) if parent_inputs else []
        for i, e in enumerate(entries):
            sub = lineage + (e.name,)
            if e.cls == "InputLayer":
                if i != 0:
                    self._fail(f"InputLayer '{e.name}' in the middle of Sequential '{entry.name}'")
                if parent_inputs is None:
                    prev = [self._input(e, sub)]
                else:
                    shape = e.config.get("batch_shape") or e.config.get("batch_input_shape")
                    self.input_shapes.append((e.name, shape))
                continue
            child_path = self._path(path, segments[id(e)])
            if not prev and parent_inputs is None and not e.is_model:
                # Sequential([...]) built without an InputLayer entry: an implicit input.
                implicit = Entry(cls="InputLayer", name="input", config={}, inbound=[])
                prev = [self._input(implicit, lineage + ("(input)",))]
            if e.is_model:
                out = self.model(e, sub, child_path, prev if prev else None)
            else:
                out = self._add(e, sub, prev, child_path)
            prev = [out]
        return prev[0]

    def _functional(self, entry, entries, lineage, path, parent_inputs) -> str:
        segments = dict(zip(map(id, entries), self._segments(entries)))
        input_names = [r[0] for r in tensor_refs(entry.config.get("input_layers", []))]
        local: Dict[str, str] = {}
        for e in entries:
            sub = lineage + (e.name,)
            if e.cls == "InputLayer":
                if parent_inputs is None:
                    local[e.name] = self._input(e, sub)
                else:
                    shape = e.config.get("batch_shape") or e.config.get("batch_input_shape")
                    self.input_shapes.append((e.name, shape))
                    if e.name not in input_names or len(parent_inputs) != len(input_names):
                        self._fail(f"model '{entry.name}' takes {len(input_names)} inputs, "
                                   f"is given {len(parent_inputs)}")
                    local[e.name] = parent_inputs[input_names.index(e.name)]
                continue
            if len(e.inbound) > 1:
                self._fail(f"layer '{e.name}' ({e.cls}) is called {len(e.inbound)} times "
                           "(shared layers are not supported)")
            refs = tensor_refs(e.inbound[0]) if e.inbound else []
            if not refs:
                self._fail(f"layer '{e.name}' ({e.cls}) in model '{entry.name}' has no input")
            ins = []
            for name, _node, tensor in refs:
                if name not in local:
                    self._fail(f"layer '{e.name}' takes the output of '{name}', which model "
                               f"'{entry.name}' does not define before it")
                if tensor != 0:
                    self._fail(f"layer '{e.name}' takes output {tensor} of '{name}' "
                               "(multi-output layers are not supported)")
                ins.append(local[name])
            child_path = self._path(path, segments[id(e)])
            if e.is_model:
                local[e.name] = self.model(e, sub, child_path, ins)
            else:
                local[e.name] = self._add(e, sub, ins, child_path)
        outs = tensor_refs(entry.config.get("output_layers", []))
        if len(outs) != 1:
            self._fail(f"model '{entry.name}' has {len(outs)} outputs; featx reads one")
        if outs[0][0] not in local:
            self._fail(f"model '{entry.name}' names output '{outs[0][0]}', which it does not define")
        return local[outs[0][0]]


def flatten(root: dict, where: str, naming: Optional[ArchiveNaming] = None) -> Graph:
    """The leaf-layer graph of a model config (parse_config's dict). With `naming`,
    every node's archive_path says where a .keras archive stores its variables:
    "<container>/<segment>" per nesting level, the segment being the snake-cased class
    name plus a per-class counter within the enclosing model's layer list (Functional:
    all layers, InputLayer included; Sequential: without its leading InputLayer), as
    keras saving_lib._save_container_state names them."""
    entry = _entry(root, where)
    if not entry.is_model:
        raise KerasModelError(f"{where}: the model config is a {entry.cls}, not a Sequential or "
                              "Functional model")
    f = _Flattener(where, naming)
    output = f.model(entry, (), "", None)
    return Graph(nodes=f.nodes, inputs=f.inputs, output=output, root=entry,
                 input_shapes=f.input_shapes, models=f.models)


# ----------------------------------------------------------------------------- weights

class WeightStore:
    """Where a container keeps each layer's variables."""
    where = ""

    def named_weights(self, node: Node) -> Dict[str, np.ndarray]:
        """{"kernel", "bias", "depthwise_kernel", "gamma", ...: array} of a leaf layer."""
        raise NotImplementedError

    def location(self, node: Node) -> str:
        """Where the layer's weights were looked for, for messages ("the file")."""
        return "the file"

    def hub_variables(self, node: Node) -> Dict[str, np.ndarray]:
        """{variable name: array} of a TF Hub KerasLayer (its module's own names)."""
        raise KerasModelError(f"{self.where}: {node.describe()}: a .keras archive stores a Hub "
                              "KerasLayer's variables by position only, without their names; "
                              "save the model as .h5, or export the Hub model with --saved-model")


def positional_names(node: Node) -> List[str]:
    """The order in which Keras saves a layer's variables (its _trainable_variables, then
    _non_trainable_variables, in creation order), named like Keras 2's weights."""
    c = node.config
    if node.cls == "Conv2D" or node.cls == "Dense":
        return ["kernel"] + (["bias"] if c.get("use_bias", True) else [])
    if node.cls == "DepthwiseConv2D":
        return ["depthwise_kernel"] + (["bias"] if c.get("use_bias", True) else [])
    if node.cls == "BatchNormalization":
        return ((["gamma"] if c.get("scale", True) else []) + (["beta"] if c.get("center", True) else [])
                + ["moving_mean", "moving_variance"])
    return []


# ----------------------------------------------------------------------------- MobileNetV2

def mobilenet_layer_names() -> Dict[str, str]:
    """Every keras.applications MobileNetV2 layer name -> its role."""
    names = {"Conv1": "conv", "bn_Conv1": "bn", "Conv1_relu": "relu", "Conv1_pad": "pad",
             "Conv_1": "conv", "Conv_1_bn": "bn", "out_relu": "relu"}
    for i, (_t, _c, stride) in enumerate(block_strides()):
        p = "expanded_conv" if i == 0 else f"block_{i}"
        for role in ("expand", "depthwise", "project"):
            if i == 0 and role == "expand":
                continue
            names[f"{p}_{role}"] = "dwconv" if role == "depthwise" else "conv"
            names[f"{p}_{role}_BN"] = "bn"
        if i:
            names[f"{p}_expand_relu"] = "relu"
        names[f"{p}_depthwise_relu"] = "relu"
        names[f"{p}_pad"] = "pad"
        names[f"{p}_add"] = "add"
    return names


BASE_NAMES = mobilenet_layer_names()
ROLE_CLASSES = {"conv": ("Conv2D",), "dwconv": ("DepthwiseConv2D",), "bn": ("BatchNormalization",),
                "relu": ("ReLU", "Activation"), "pad": ("ZeroPadding2D",), "add": ("Add",)}


def _expected_wiring(net: ir.Network, present: set) -> Dict[str, List[str]]:
    """name -> input names of the standard keras.applications graph; "" is the base input."""
    wires: Dict[str, List[str]] = {}
    if "Conv1_pad" in present:
        wires["Conv1_pad"] = [""]
        wires["Conv1"] = ["Conv1_pad"]
    else:
        wires["Conv1"] = [""]
    wires["bn_Conv1"] = ["Conv1"]
    wires["Conv1_relu"] = ["bn_Conv1"]
    x = "Conv1_relu"
    for i, block in enumerate(net.blocks):
        p = "expanded_conv" if i == 0 else f"block_{i}"
        y = x
        if i:
            wires[f"{p}_expand"] = [y]
            wires[f"{p}_expand_BN"] = [f"{p}_expand"]
            wires[f"{p}_expand_relu"] = [f"{p}_expand_BN"]
            y = f"{p}_expand_relu"
        if f"{p}_pad" in present and block.stride == 2:
            wires[f"{p}_pad"] = [y]
            y = f"{p}_pad"
        wires[f"{p}_depthwise"] = [y]
        wires[f"{p}_depthwise_BN"] = [f"{p}_depthwise"]
        wires[f"{p}_depthwise_relu"] = [f"{p}_depthwise_BN"]
        wires[f"{p}_project"] = [f"{p}_depthwise_relu"]
        wires[f"{p}_project_BN"] = [f"{p}_project"]
        if block.residual:
            wires[f"{p}_add"] = sorted([x, f"{p}_project_BN"])
            x = f"{p}_add"
        else:
            x = f"{p}_project_BN"
    wires["Conv_1"] = [x]
    wires["Conv_1_bn"] = ["Conv_1"]
    wires["out_relu"] = ["Conv_1_bn"]
    return wires


def _pair(value, default=(1, 1)) -> Tuple[int, int]:
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return int(value), int(value)
    return tuple(int(v) for v in value)[:2]


def _activation_name(value) -> str:
    """An activation from a config: "relu", None, or a serialized function dict."""
    if value is None:
        return "linear"
    if isinstance(value, dict):
        cfg = value.get("config")
        if isinstance(cfg, str):
            return cfg
        if isinstance(cfg, dict) and isinstance(cfg.get("name"), str):
            return cfg["name"]
        return str(value.get("class_name", value))
    return str(value)


def affine_text(scale: float, offset: float) -> str:
    """"2 * x - 1"."""
    sign = "-" if offset < 0 else "+"
    return f"{scale:.9g} * x {sign} {abs(offset):.9g}"


def _scalar(value, what: str, where: str) -> float:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 0 or not np.all(arr == arr[0]):
        raise KerasModelError(f"{where}: {what} is per-channel ({value}); featx's input "
                              "normalisation is one scale and one offset for all channels")
    return float(arr[0])


@dataclass
class _Context:
    where: str
    graph: Graph
    store: WeightStore
    report: List[str]
    source_format: str = ""
    resolution: Optional[int] = None          # the caller's
    default_resolution: Optional[int] = None  # the container's guess
    width_multiplier: Optional[float] = None
    notes: List[str] = field(default_factory=list)

    def fail(self, node: Optional[Node], message: str):
        prefix = f"{node.describe()}: " if node is not None else ""
        raise KerasModelError(f"{self.where}: {prefix}{message}")


def _check_relu6(ctx: _Context, node: Node) -> None:
    c = node.config
    if node.cls == "Activation":
        if _activation_name(c.get("activation")) != "relu6":
            ctx.fail(node, f"expected ReLU6, found activation {_activation_name(c.get('activation'))!r}")
        return
    max_value = c.get("max_value")
    if (max_value is None or abs(float(max_value) - 6.0) > 1e-6 or float(c.get("negative_slope") or 0)
            or float(c.get("threshold") or 0)):
        ctx.fail(node, f"expected ReLU(max_value=6), found max_value={max_value}, "
                       f"negative_slope={c.get('negative_slope')}, threshold={c.get('threshold')}")


def _check_base(ctx: _Context, base: Dict[str, Node], net: ir.Network, base_input: str,
                variables: Dict[str, np.ndarray]) -> None:
    """Layer classes, settings and wiring of the base against the standard network, and the
    conv settings against the weights' shapes."""
    wires = _expected_wiring(net, set(base))
    expected = set(wires)
    missing = sorted(expected - set(base), key=lambda n: list(BASE_NAMES).index(n))
    if missing:
        ctx.fail(None, f"MobileNetV2 layer '{missing[0]}' is missing ({len(missing)} missing); "
                       "the base must be keras.applications.MobileNetV2 (all 17 blocks, up to out_relu)")
    extra = sorted(set(base) - expected)
    if extra:
        node = base[extra[0]]
        ctx.fail(node, "a MobileNetV2 layer name where the standard network has none "
                       f"({'an Add on a block without residual' if node.cls == 'Add' else 'unexpected'})")
    by_id = {n.id: n.name for n in base.values()}
    for name, node in base.items():
        role = BASE_NAMES[name]
        if node.cls not in ROLE_CLASSES[role]:
            ctx.fail(node, f"expected {' or '.join(ROLE_CLASSES[role])} for this MobileNetV2 layer")
        got = sorted("" if i == base_input else by_id.get(i, f"<{i}>") for i in node.inputs)
        if got != sorted(wires[name]):
            ctx.fail(node, f"takes {[g or '(base input)' for g in got]}, the standard MobileNetV2 "
                           f"takes {[w or '(base input)' for w in sorted(wires[name])]}")
        c = node.config
        if role in ("conv", "dwconv"):
            if c.get("data_format", "channels_last") not in ("channels_last", None):
                ctx.fail(node, f"data_format {c.get('data_format')}: featx runs channels_last")
            if _pair(c.get("dilation_rate")) != (1, 1):
                ctx.fail(node, f"dilation_rate {c.get('dilation_rate')}: MobileNetV2 has none")
            if role == "dwconv" and int(c.get("depth_multiplier", 1)) != 1:
                ctx.fail(node, f"depth_multiplier {c.get('depth_multiplier')}: featx runs 1")
            kernel = variables.get(f"{name}/{'depthwise_kernel' if role == 'dwconv' else 'kernel'}")
            size = c.get("kernel_size")
            if kernel is not None and size is not None and list(_pair(size)) != list(kernel.shape[:2]):
                ctx.fail(node, f"kernel_size {size} but the weights are {list(kernel.shape)}")
            filters = c.get("filters")
            if (kernel is not None and role == "conv" and filters is not None
                    and int(filters) != kernel.shape[-1]):
                ctx.fail(node, f"filters {filters} but the weights are {list(kernel.shape)}: the weights "
                               "do not belong to this config")
            if _activation_name(c.get("activation")) != "linear":
                ctx.fail(node, f"activation {_activation_name(c.get('activation'))!r} inside the conv: "
                               "keras.applications MobileNetV2 has none")
            padded = f"{name[:-len('_depthwise')]}_pad" in base if name.endswith("_depthwise") else (
                name == "Conv1" and "Conv1_pad" in base)
            want = "valid" if padded else "same"
            if str(c.get("padding", "valid")).lower() != want:
                ctx.fail(node, f"padding {c.get('padding')!r}, expected {want!r}"
                               f"{' after the ZeroPadding2D' if padded else ''}")
        elif role == "bn":
            axis = c.get("axis", -1)
            axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
            if axis not in (-1, 3):
                ctx.fail(node, f"batch norm over axis {c.get('axis')}; featx normalises channels (-1)")
        elif role == "relu":
            _check_relu6(ctx, node)
        elif role == "pad":
            pad = c.get("padding")
            if pad not in ([[0, 1], [0, 1]], [[1, 1], [1, 1]]):
                ctx.fail(node, f"padding {pad}: expected [[0, 1], [0, 1]] (or [[1, 1], [1, 1]] for an "
                               "odd input size), which is TF SAME for a 3x3 stride-2 conv")
    # Strides: the IR takes them from the standard pattern; the config must agree.
    convs = [("Conv1", net.stem)] + [
        (("expanded_conv" if i == 0 else f"block_{i}") + "_depthwise", b.depthwise)
        for i, b in enumerate(net.blocks)]
    for name, conv in convs:
        strides = _pair(base[name].config.get("strides"))
        if strides != (conv.stride, conv.stride):
            ctx.fail(base[name], f"strides {list(strides)}, the standard MobileNetV2 has "
                                 f"{[conv.stride, conv.stride]} here")
    for name, node in base.items():
        if BASE_NAMES[name] == "conv" and name != "Conv1" and _pair(node.config.get("strides")) != (1, 1):
            ctx.fail(node, f"strides {node.config.get('strides')}, expected [1, 1]")


def _set_epsilons(ctx: _Context, net: ir.Network, base: Dict[str, Node]) -> None:
    """Batch-norm epsilon from each BatchNormalization config (keras.applications builds
    them with 1e-3, network_from_variables' default); a line in the report if any differs."""
    scheme = KerasScheme()
    changed = []
    for layer, conv in named_convs(net):
        node = base.get(scheme.bn(layer, "gamma").split("/")[0])
        if node is None or conv.batch_norm is None or node.config.get("epsilon") is None:
            continue
        eps = node.config["epsilon"]
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            ctx.fail(node, f"epsilon {eps!r} is not a positive number")
        if float(eps) != conv.batch_norm.epsilon:
            conv.batch_norm.epsilon = float(eps)
            changed.append(node.name)
    if changed:
        ctx.report.append(f"batch-norm epsilon from the layer configs ({len(changed)} layers, e.g. "
                          f"'{changed[0]}' {base[changed[0]].config['epsilon']:g})")


# ----------------------------------------------------------------------------- before and after the base

_OP_FUNCTIONS = {"math.truediv": "div", "math.divide": "div", "math.multiply": "mul",
                 "math.subtract": "sub", "math.add": "add", "__operators__.add": "add"}
_KERAS3_OPS = {"TrueDivide": "div", "Divide": "div", "Multiply": "mul", "Subtract": "sub",
               "Add": "add"}


def _scalar_op(ctx: _Context, node: Node) -> Tuple[str, float, str]:
    """(op, constant, text) of a scalar op on the image: a tf.keras TFOpLambda (tf.math.truediv
    with y=127.5, from preprocess_input) or a Keras 3 operation (x / 127.5 on a KerasTensor)."""
    if node.cls == "TFOpLambda":
        y = node.kwargs.get("y")
        what = f"tf.{node.config['function']}"
        op = _OP_FUNCTIONS[node.config["function"]]
    else:
        args = node.args
        tensor_first = (len(args) == 2 and isinstance(args[0], dict)
                        and args[0].get("class_name") == "__keras_tensor__")
        y = args[1] if tensor_first else None
        what = f"{node.cls} op"
        op = _KERAS3_OPS[node.cls]
    if not isinstance(y, (int, float)) or isinstance(y, bool):
        ctx.fail(node, f"{what} with {y!r}: only x op scalar-constant folds into the input "
                       "normalisation")
    return op, float(y), what


def _input_affine(ctx: _Context, chain: List[Node]) -> Tuple[float, float, bool]:
    """(scale, offset, any) with base input = scale * model input + offset, from the layers
    between the model input and the base."""
    scale, offset, scaled = 1.0, 0.0, False
    for node in chain:
        c = node.config
        if node.cls == "Rescaling":
            s = _scalar(c.get("scale", 1.0), f"Rescaling '{node.name}' scale", ctx.where)
            o = _scalar(c.get("offset", 0.0), f"Rescaling '{node.name}' offset", ctx.where)
            scale, offset, scaled = s * scale, s * offset + o, True
            ctx.report.append(f"kept rescaling '{node.name}' ({affine_text(s, o)}) as the input "
                              "normalisation")
        elif ((node.cls == "TFOpLambda" and c.get("function") in _OP_FUNCTIONS)
              or (node.is_op and node.cls in _KERAS3_OPS)):
            op, y, what = _scalar_op(ctx, node)
            if op == "div" and y == 0.0:
                ctx.fail(node, f"{what} by 0")
            scale, offset = ir.apply_scalar_op(scale, offset, op, y)
            scaled = True
            ctx.report.append(f"kept {what} '{node.name}' (y = {y:.9g}) as part of the input "
                              "normalisation")
        elif node.cls in AUGMENTATION_NOOPS or node.cls in INFERENCE_NOOPS:
            ctx.report.append(f"skipped {node.cls} '{node.name}' (augmentation, identity at inference)")
        else:
            ctx.fail(node, "before MobileNetV2: featx reads only Rescaling (or the scalar ops of "
                           "preprocess_input) and skips augmentation layers there")
    return scale, offset, scaled


_ACT_FOLDS = {("relu", "relu"): "relu", ("relu6", "relu6"): "relu6", ("relu", "relu6"): "relu6",
              ("relu6", "relu"): "relu6"}


def _activation_of(ctx: _Context, node: Node) -> str:
    c = node.config
    if node.cls == "Activation":
        act = _activation_name(c.get("activation"))
    elif node.cls == "Softmax":
        axis = c.get("axis", -1)
        if axis not in (-1, [-1], 1, [1]):
            ctx.fail(node, f"softmax over axis {axis}: featx's head takes it over the outputs (-1)")
        act = "softmax"
    else:  # ReLU layer
        max_value = c.get("max_value")
        if float(c.get("negative_slope") or 0) or float(c.get("threshold") or 0):
            ctx.fail(node, f"ReLU with negative_slope={c.get('negative_slope')}, "
                           f"threshold={c.get('threshold')}: featx runs relu and relu6")
        if max_value is None:
            act = "relu"
        elif abs(float(max_value) - 6.0) < 1e-6:
            act = "relu6"
        else:
            ctx.fail(node, f"ReLU(max_value={max_value}): featx runs relu and relu6")
    if act not in ir.DENSE_ACTIVATIONS:
        ctx.fail(node, f"activation {act!r}: featx's head runs {', '.join(ir.DENSE_ACTIVATIONS)}")
    return act


def _dense(ctx: _Context, node: Node, width: int) -> ir.Dense:
    weights = ctx.store.named_weights(node)
    where = ctx.store.location(node)
    c = node.config
    if "kernel" not in weights:
        ctx.fail(node, f"{where} holds no kernel for it (its weights there: "
                       f"{', '.join(sorted(weights)) or 'none'})")
    kernel = np.asarray(weights["kernel"], dtype=np.float32)
    units = c.get("units")
    if kernel.ndim != 2 or (units is not None and kernel.shape[1] != int(units)):
        ctx.fail(node, f"kernel shape {list(kernel.shape)} is not [inputs, units={units}]")
    if kernel.shape[0] != width:
        ctx.fail(node, f"kernel shape {list(kernel.shape)} takes {kernel.shape[0]} inputs, the layer "
                       f"before it gives {width}")
    bias = None
    if c.get("use_bias", True):
        if "bias" not in weights:
            ctx.fail(node, f"use_bias is set but {where} holds no bias for it")
        bias = np.asarray(weights["bias"], dtype=np.float32).reshape(-1)
        if bias.shape != (kernel.shape[1],):
            ctx.fail(node, f"bias shape {list(np.shape(weights['bias']))} does not match "
                           f"{kernel.shape[1]} units")
    elif "bias" in weights:
        ctx.fail(node, f"use_bias is off but {where} holds a bias for it")
    extra = sorted(set(weights) - {"kernel", "bias"})
    if extra:
        ctx.fail(node, f"unexpected weights {extra} (quantized or LoRA Dense layers are not supported)")
    act = _activation_name(c.get("activation"))
    if act not in ir.DENSE_ACTIVATIONS:
        ctx.fail(node, f"activation {act!r}: featx's head runs {', '.join(ir.DENSE_ACTIVATIONS)}")
    return ir.Dense(name=node.name, weights=np.ascontiguousarray(kernel.T), bias=bias, activation=act)


def _head(ctx: _Context, chain: List[Node], dense: List[ir.Dense], width: int,
          pooled: bool) -> List[ir.Dense]:
    """The Dense layers of the chain after the base, appended to `dense` (which takes
    `width` inputs from the base, or gives them if it is not empty)."""
    for node in chain:
        cls = node.cls
        if cls == "GlobalAveragePooling2D":
            if pooled:
                ctx.fail(node, "a second global pooling")
            if node.config.get("data_format", "channels_last") not in ("channels_last", None):
                ctx.fail(node, f"data_format {node.config.get('data_format')}")
            pooled = True
            ctx.report.append(f"kept pooling '{node.name}' (mean over H and W: featx's feature vector)"
                              + (" (keepdims: the 1x1 map is the same numbers)"
                                 if node.config.get("keepdims") else ""))
        elif cls == "GlobalMaxPooling2D":
            ctx.fail(node, "max pooling: featx's feature vector is the mean over H and W")
        elif cls in INFERENCE_NOOPS:
            ctx.report.append(f"skipped {cls.lower()} '{node.name}' (identity at inference)")
        elif cls == "Flatten" or (cls == "Reshape" and pooled
                                  and list(node.config.get("target_shape") or []) == [width]):
            if not pooled:
                ctx.fail(node, "flattens the spatial feature map; featx's head starts from the pooled "
                               "feature vector (use GlobalAveragePooling2D)")
            ctx.report.append(f"skipped {cls.lower()} '{node.name}' (after global pooling: no-op)")
        elif cls == "Dense":
            if not pooled:
                ctx.fail(node, "a Dense layer on the spatial map before global pooling; featx's head "
                               "starts from the pooled feature vector")
            d = _dense(ctx, node, width)
            dense.append(d)
            width = d.out_features
            ctx.report.append(f"kept dense '{d.name}' {d.in_features} -> {d.out_features} {d.activation}"
                              f"{' +bias' if d.bias is not None else ' (no bias)'}")
        elif cls in ("Activation", "Softmax", "ReLU"):
            act = _activation_of(ctx, node)
            if not dense:
                ctx.fail(node, "an activation before any Dense layer; featx's head applies activations "
                               "only as part of a Dense layer")
            last = dense[-1]
            if act == "linear":
                folded = last.activation
            elif last.activation == "linear":
                folded = act
            else:
                folded = _ACT_FOLDS.get((last.activation, act))
                if folded is None:
                    ctx.fail(node, f"{act} after dense '{last.name}' which already applies "
                                   f"{last.activation}: featx runs one activation per Dense layer")
            ctx.report.append(f"folded {cls.lower()} '{node.name}' ({act}) into dense '{last.name}'"
                              f" -> {folded}")
            last.activation = folded
        else:
            ctx.fail(node, "after MobileNetV2: featx's head runs global average pooling, then Dense "
                           f"layers ({', '.join(ir.DENSE_ACTIVATIONS)}; Activation/Softmax/ReLU layers "
                           "fold into them; Dropout and Flatten are skipped)")
    if not pooled:
        ctx.report.append("the model ends at the last feature map (no pooling): featx's feature "
                          "vector is its mean over H and W")
    return dense


# ----------------------------------------------------------------------------- the network

def _batch_shape(shape) -> Optional[Tuple[int, int]]:
    """(height, width) of a [batch, H, W, C] shape from a config (a list, or a serialised
    TensorShape {"class_name": "TensorShape", "items": [...]}); None if not fixed."""
    if isinstance(shape, dict):
        shape = shape.get("items")
    if (isinstance(shape, list) and len(shape) == 4 and isinstance(shape[1], int)
            and isinstance(shape[2], int) and shape[1] > 0 and shape[2] > 0):
        return shape[1], shape[2]
    return None


def _resolution(ctx: _Context, name: Optional[str]) -> Optional[int]:
    """The caller's, else the model's input shape (InputLayers, then any layer's
    batch_input_shape), else the base model's or Hub handle's `name`, else the container's
    default; None leaves network_from_variables' 224."""
    if ctx.resolution:
        return ctx.resolution
    shapes = [shape for _name, shape in ctx.graph.input_shapes] + [
        n.config.get("batch_input_shape") or n.config.get("batch_shape")
        for n in ctx.graph.nodes.values()]
    for shape in shapes:
        hw = _batch_shape(shape)
        if hw is not None:
            if hw[0] != hw[1]:
                ctx.notes.append(f"input {hw[0]}x{hw[1]} is not square; resolution recorded as "
                                 f"{max(hw)}")
            return max(hw)
    if name:
        m = re.search(r"mobilenetv2_(\d\.\d+)_(\d+)$", name)
        res = int(m.group(2)) if m else parse_model_name(name)[1]
        if res:
            ctx.notes.append(f"input size not fixed; resolution {res} from the name {name!r}")
            return res
    return ctx.default_resolution


def _chain_back(ctx: _Context, start: str, stop: set, what: str,
                forbid: frozenset = frozenset()) -> List[Node]:
    """Nodes from `start` back to (excluding) a node in `stop`, each with one input, in
    forward order; reaching a node in `forbid` is an error."""
    chain, current = [], start
    seen = set()
    while current not in stop:
        node = ctx.graph.nodes[current]
        if current in forbid:
            ctx.fail(node, "the model's output is taken from inside MobileNetV2, not from its end")
        if current in seen:  # pragma: no cover - configs are acyclic
            ctx.fail(node, "cycle in the model graph")
        seen.add(current)
        if len(node.inputs) != 1:
            if not node.inputs:
                ctx.fail(node, f"{what}: reached a model input without passing MobileNetV2")
            ctx.fail(node, f"{what}: takes {len(node.inputs)} inputs; featx reads a single chain "
                           "of layers there")
        chain.append(node)
        current = node.inputs[0]
    return chain[::-1]


def _hub_base(ctx: _Context, node: Node) -> ir.Network:
    """The network inside a TF Hub KerasLayer, from its module's own (slim) variable names."""
    variables = ctx.store.hub_variables(node)
    handle = str(node.config.get("handle", ""))
    handle_width, _res = parse_model_name(handle)
    try:
        net = network_from_variables(variables, resolution=_resolution(ctx, handle),
                                     width_multiplier=ctx.width_multiplier, source=ctx.where,
                                     source_format=ctx.source_format)
    except ValueError as exc:
        ctx.fail(node, str(exc))
    if handle_width is not None and abs(handle_width - net.width_multiplier) > 1e-6:
        ctx.notes.append(f"handle says width {handle_width}, channels say {net.width_multiplier}")
    scheme = net.notes.split(" ", 1)[0]  # network_from_variables' notes start with the scheme
    ctx.report.append(f"kept base hub.KerasLayer '{node.name}' ({len(variables)} {scheme}-named "
                      f"variables, handle {handle or 'not recorded'}): MobileNetV2 width "
                      f"{net.width_multiplier}, {net.feature_dim} features")
    return net


def _keras_base(ctx: _Context, base: Dict[str, Node]) -> Tuple[ir.Network, str]:
    """The keras.applications base, checked layer by layer; (network, base input node id)."""
    graph = ctx.graph
    variables = {}
    for name, node in base.items():
        for var, value in ctx.store.named_weights(node).items():
            variables[f"{name}/{var}"] = value
    enclosing = [lin for lin, _cls in graph.models if base["Conv1"].lineage[:len(lin)] == lin]
    base_model = max(enclosing, key=len)[-1] if enclosing else None
    try:
        net = network_from_variables(variables, resolution=_resolution(ctx, base_model),
                                     width_multiplier=ctx.width_multiplier, source=ctx.where,
                                     source_format=ctx.source_format)
    except ValueError as exc:
        raise KerasModelError(f"{ctx.where}: MobileNetV2 base: {exc}") from None
    first = base.get("Conv1_pad", base["Conv1"])
    if len(first.inputs) != 1:
        ctx.fail(first, f"takes {len(first.inputs)} inputs, expected the image")
    _check_base(ctx, base, net, first.inputs[0], variables)
    model = f" {base_model!r}" if base_model else ""
    ctx.report.append(f"kept base keras.applications MobileNetV2{model} (layers '{first.name}' ... "
                      f"'out_relu', {len(variables)} Keras-named variables): width "
                      f"{net.width_multiplier}, {net.feature_dim} features")
    _set_epsilons(ctx, net, base)
    return net, first.inputs[0]


def build_network(graph: Graph, store: WeightStore, *, where: str, source_format: str,
                  resolution: Optional[int] = None, default_resolution: Optional[int] = None,
                  width_multiplier: Optional[float] = None,
                  labels: Optional[List[str]] = None, report_header: str = "") -> ir.Network:
    """The ir.Network of a flattened Keras model; see the module docstring. Resolution: the
    argument, else the model's input shape, else the base's or Hub handle's name, else
    `default_resolution` (the container's guess, e.g. from a directory name), else 224."""
    report: List[str] = [report_header] if report_header else []
    ctx = _Context(where=where, graph=graph, store=store, report=report,
                   source_format=source_format, resolution=resolution,
                   default_resolution=default_resolution, width_multiplier=width_multiplier)
    nodes = graph.nodes
    hub = [n for n in nodes.values() if is_hub_layer(n.cls)]
    by_name: Dict[str, List[Node]] = {}
    for n in nodes.values():
        if n.name in BASE_NAMES:
            by_name.setdefault(n.name, []).append(n)
    for name, found in by_name.items():
        if len(found) > 1:
            ctx.fail(found[1], f"a second layer named {name!r} (two MobileNetV2 bases?)")
    base = {name: found[0] for name, found in by_name.items()}
    if hub and base:
        ctx.fail(hub[0], "a Hub KerasLayer next to keras.applications MobileNetV2 layers")
    if len(hub) > 1:
        ctx.fail(hub[1], "a second Hub KerasLayer")
    if hub:
        node = hub[0]
        if len(node.inputs) != 1:
            ctx.fail(node, f"takes {len(node.inputs)} inputs, expected the image")
        net = _hub_base(ctx, node)
        base_in, base_out, base_ids = node.inputs[0], node.id, {node.id}
        # A Hub image module takes [0, 1] and scales to [-1, 1] itself.
        seen_scale, seen_offset = 2.0, -1.0
        default_range = "[0, 1] (hub.KerasLayer: x * 2 - 1 inside)"
        pooled = True  # a feature vector (or a classification module's logits)
    else:
        if "Conv1" not in base:
            models = ", ".join(f"'{lin[-1]}' ({cls})" for lin, cls in graph.models) or "none"
            ctx.fail(None, "no MobileNetV2 base: no layer named Conv1 (keras.applications.MobileNetV2) "
                           f"and no Hub KerasLayer; nested models: {models}")
        net, base_in = _keras_base(ctx, base)
        base_out, base_ids = base["out_relu"].id, {n.id for n in base.values()}
        seen_scale, seen_offset = 1.0, 0.0
        default_range = "[-1, 1] (keras.applications.mobilenet_v2.preprocess_input outside the model)"
        pooled = False

    # Before the base: the input normalisation.
    for i in graph.inputs:
        report.append(f"skipped InputLayer '{nodes[i].name}'")
    pre = _chain_back(ctx, base_in, set(graph.inputs), "before MobileNetV2")
    scale, offset, scaled = _input_affine(ctx, pre)
    if scaled:
        # A model that rescales its input itself takes pixels in [0, 255]: featx's x in
        # [0, 1] is pixel / 255.
        model_scale, model_offset = 255.0, 0.0
        range_note = "pixels in [0, 255] (it rescales them itself)"
    else:
        model_scale, model_offset = (2.0, -1.0) if not hub else (1.0, 0.0)
        range_note = default_range
    # internal = seen_scale * (scale * (model_scale * x + model_offset) + offset) + seen_offset
    in_scale = seen_scale * scale * model_scale
    in_offset = seen_scale * (scale * model_offset + offset) + seen_offset
    net.input_scale, net.input_offset = float(in_scale), float(in_offset)
    report.append(f"input: the model takes {range_note}; featx's x in [0, 1] -> internal = "
                  f"{affine_text(in_scale, in_offset)}")

    # After the base: a single chain up to the model output, and nothing off the path.
    head_chain = _chain_back(ctx, graph.output, {base_out}, "after MobileNetV2",
                             forbid=frozenset(base_ids))
    used = base_ids | {n.id for n in pre} | {n.id for n in head_chain} | set(graph.inputs)
    for n in nodes.values():
        if n.id not in used:
            ctx.fail(n, "not on the path from the input through MobileNetV2 to the output")
    dense: List[ir.Dense] = []
    width = net.feature_dim
    if net.classifier is not None:  # a Hub classification module
        c = net.classifier
        if any(n.cls not in INFERENCE_NOOPS and n.cls != "Flatten" for n in head_chain):
            # Its logits feed the user's layers: they are the head's first layer.
            dense.append(ir.Dense(name="Logits", weights=c.weights, bias=c.bias, activation="linear"))
            net.classifier = None
            width = c.num_classes
            report.append(f"kept the base's logits as dense 'Logits' {net.feature_dim} -> {width} "
                          "linear")
        else:
            report.append(f"kept the base's classifier ({c.num_classes} classes)")
    dense = _head(ctx, head_chain, dense, width, pooled)

    if (len(dense) == 1 and dense[0].name == "predictions" and dense[0].out_features == 1000
            and dense[0].activation in ("softmax", "linear") and not hub):
        d = dense[0]
        net.classifier = ir.Classifier(weights=d.weights, bias=d.bias, label_offset=1)
        at = next(i for i, line in enumerate(report) if line.startswith("kept dense 'predictions'"))
        report[at] = (f"kept dense 'predictions' {d.in_features} -> 1000 {d.activation} as the ImageNet "
                      "classifier (keras.applications include_top; labels offset 1 in "
                      "imagenet_labels.txt)")
    else:
        net.dense_head = dense
    if labels:
        net.labels = list(labels)
    if ctx.notes:
        net.notes = "; ".join([net.notes] + ctx.notes if net.notes else ctx.notes)
    net.report = report
    try:
        net.validate()
    except ValueError as exc:
        raise KerasModelError(f"{where}: {exc}") from None
    return net
