"""Write a Keras 2 `model.save('dir')` SavedModel of a MobileNetV2 with a head,
without TensorFlow, for tests: variables/variables.{index,data-*}, saved_model.pb
and keras_metadata.pb, laid out as TF 2.x writes them.

  root.layer_with_weights-0            the base: a hub.KerasLayer (its variables
                                       as children under TF-slim names
                                       "MobilenetV2/Conv/weights:0", reachable
                                       again through _func/variables/N) or a
                                       nested keras.applications Functional model
                                       (layer_with_weights-K / layer-I children)
  root.layer_with_weights-1 ...        the Dense layers: children kernel, bias
  root.layer-I                         every layer again, by position
  root.optimizer                       Adam: iter etc., slot variables m, v
  root.variables, keras_api, signatures  SavedModel-only objects

Checkpoint keys are the breadth-first paths with TF's name escaping
(saved_model_proto.escape_local_name); like TF 2.14 the checkpoint's object
graph holds the same nodes as saved_model.pb's SavedObjectGraph. The TF
graph and functions are not written: nothing here runs the model.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import ir
from . import saved_model_proto as smp
from .checkpoint_writer import _DTYPE_ENUM, write_bundle
from .mobilenet_names import KerasScheme, keras_variables, slim_variables

KERAS_VERSION = "2.11.0"
TF_VERSION = "2.11.0"


class _Objects:
    """An object graph under construction: nodes, Keras records, variable values."""

    def __init__(self):
        self.nodes: List[smp.ObjectNode] = []
        self.values: Dict[int, Tuple[str, np.ndarray]] = {}  # node -> (full_name, value)
        self.keras: List[Tuple[int, str, dict]] = []  # (node, identifier, metadata)
        self.slots: List[Tuple[int, str, int]] = []

    def node(self, kind="user_object", identifier="_generic_user_object") -> int:
        self.nodes.append(smp.ObjectNode(kind=kind, identifier=identifier if kind == "user_object"
                                         else ""))
        return len(self.nodes) - 1

    def link(self, parent: int, name: str, child: int) -> int:
        self.nodes[parent].children.append((name, child))
        return child

    def variable(self, full_name: str, value: np.ndarray) -> int:
        i = self.node("variable")
        self.nodes[i].variable_name = full_name
        self.values[i] = (full_name, np.asarray(value))
        return i

    def keras_object(self, identifier: str, meta: dict) -> int:
        i = self.node("user_object", identifier)
        self.keras.append((i, identifier, meta))
        return i

    def set_meta(self, node: int, meta: dict) -> None:
        self.keras = [(n, ident, meta if n == node else m) for n, ident, m in self.keras]

    def function(self, parent: int, name: str) -> int:
        return self.link(parent, name, self.node("function"))


def _layer_meta(class_name: str, config: dict, build_shape=None, **extra) -> dict:
    meta = {"name": config["name"], "trainable": config.get("trainable", True),
            "expects_training_arg": class_name in ("Dropout", "KerasLayer", "BatchNormalization"),
            "dtype": "float32", "batch_input_shape": config.get("batch_input_shape"),
            "stateful": False, "must_restore_from_config": False,
            "class_name": class_name, "config": config}
    if build_shape is not None:
        meta["build_input_shape"] = build_shape
    meta.update(extra)
    return meta


def _dense_config(d: ir.Dense, activation: Optional[str] = None) -> dict:
    return {"name": d.name, "trainable": True, "dtype": "float32", "units": d.out_features,
            "activation": activation or d.activation, "use_bias": d.bias is not None,
            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
            "kernel_constraint": None, "bias_constraint": None}


def keras_application_layers(net: ir.Network, pooling: bool = False
                             ) -> List[Tuple[str, str, dict, Dict[str, np.ndarray]]]:
    """tf.keras.applications.MobileNetV2 (TF 2.x) as (class, name, config, {local: value}),
    in model.layers order, with the variables of `net` under Keras names."""
    variables = keras_variables(net)
    by_layer: Dict[str, Dict[str, np.ndarray]] = {}
    for name, value in variables.items():
        layer, local = name.rsplit("/", 1)
        by_layer.setdefault(layer, {})[local] = value
    out = []

    def add(cls, name, **config):
        out.append((cls, name, dict(name=name, trainable=True, dtype="float32", **config),
                    by_layer.pop(name, {})))

    add("InputLayer", "input_1", batch_input_shape=[None, net.resolution, net.resolution, 3],
        sparse=False, ragged=False)
    scheme = KerasScheme()

    def conv(layer, conv_ir: ir.Conv, relu: bool):
        base = scheme.layer(layer)
        if conv_ir.kind == "depthwise":
            add("DepthwiseConv2D", base, kernel_size=[3, 3], strides=[conv_ir.stride] * 2,
                padding="same" if conv_ir.stride == 1 else "valid", depth_multiplier=1,
                use_bias=False, activation="linear")
        else:
            add("Conv2D", base, filters=conv_ir.out_channels, kernel_size=list(
                conv_ir.kernel.shape[:2]), strides=[conv_ir.stride] * 2, padding="same",
                use_bias=False, activation="linear")
        bn = scheme.bn(layer, "gamma").rsplit("/", 1)[0]
        add("BatchNormalization", bn, axis=-1, momentum=0.999, epsilon=0.001)
        if relu:
            add("ReLU", base + "_relu" if layer != "stem" else "Conv1_relu", max_value=6.0,
                negative_slope=0.0, threshold=0.0)

    conv("stem", net.stem, True)
    for i, block in enumerate(net.blocks):
        if block.expand is not None:
            conv(("expand", i), block.expand, True)
        if block.stride == 2:
            add("ZeroPadding2D", f"block_{i}_pad", padding=[[0, 1], [0, 1]])
        conv(("depthwise", i), block.depthwise, True)
        conv(("project", i), block.project, False)
        if block.residual:
            add("Add", f"block_{i}_add")
    conv("head", net.head, False)
    add("ReLU", "out_relu", max_value=6.0, negative_slope=0.0, threshold=0.0)
    if pooling:
        add("GlobalAveragePooling2D", "global_average_pooling2d", data_format="channels_last",
            keepdims=False)
    if by_layer:
        raise ValueError(f"variables without a layer: {sorted(by_layer)}")
    return out


def _functional_config(name: str, entries: List[Tuple[str, str, dict]],
                       kwargs: Dict[str, dict]) -> dict:
    """A Functional get_config of a chain; a residual Add also takes its block's input."""
    layers = []
    outputs: List[str] = []  # block outputs so far (project BN or add)
    previous = None
    for cls, lname, cfg in entries:
        inbound = []
        if previous is not None:
            sources = [outputs[-2], previous] if cls == "Add" else [previous]
            inbound = [[[src, 0, 0, kwargs.get(lname, {})] for src in sources]]
        if lname.endswith("_project_BN") or lname.endswith("_add"):
            outputs.append(lname)
        layers.append({"class_name": cls, "config": cfg, "name": lname, "inbound_nodes": inbound})
        previous = lname
    return {"name": name, "layers": layers, "input_layers": [[entries[0][1], 0, 0]],
            "output_layers": [[entries[-1][1], 0, 0]]}


def _model_meta(class_name: str, config: dict, input_shape, **extra) -> dict:
    return _layer_meta(class_name, config, input_shape, is_graph_network=True,
                       keras_version=KERAS_VERSION, backend="tensorflow",
                       model_config={"class_name": class_name, "config": config}, **extra)


def write_keras_saved_model(
        model_dir: str, net: ir.Network, *, base: str = "hub", root: str = "sequential",
        metadata: str = "file", pre: Sequence[Tuple[str, str, dict]] = (),
        dropout: bool = True, optimizer: bool = True,
        hub_handle: str = "https://tfhub.dev/google/imagenet/mobilenet_v2_035_96/feature_vector/5",
        base_name: Optional[str] = None, omit: Sequence[str] = (),
        activations: Optional[Dict[str, str]] = None, compress: bool = False,
        edit_metadata: Optional[Callable[[str, dict], None]] = None) -> str:
    """`net` (with its dense_head) as a Keras SavedModel in `model_dir`.

    base: "hub" (hub.KerasLayer with slim variables), "keras" (a nested
    keras.applications MobileNetV2, include_top=False, then GlobalAveragePooling2D)
    or "inline" (its layers directly in a functional root).
    root: "sequential" or "functional" ("inline" needs functional).
    metadata: "file" (keras_metadata.pb, Keras >= 2.5), "object_graph" (the JSON in
    saved_model.pb's SavedUserObjects, Keras <= 2.4) or "none".
    pre: layers before the base as (class, name, config); a "_call_kwargs" config
    entry becomes the call's kwargs in inbound_nodes (TFOpLambda's y).
    omit: full variable names ("dense/bias") left out of the checkpoint.
    activations: {dense name: activation} written instead of the IR's.
    edit_metadata(node_path, meta): changes a record before it is written.
    """
    if base == "inline" and root != "functional":
        raise ValueError("base='inline' needs root='functional'")
    functional = root == "functional"
    o = _Objects()
    res = net.resolution
    input_shape = [None, res, res, 3]
    # (class, name, config, {local: (full_name, value)}, nested entries or None)
    input_name = "input_2" if base == "keras" else "input_1"
    layers: list = [("InputLayer", input_name, {"batch_input_shape": input_shape,
                                                "dtype": "float32", "sparse": False,
                                                "ragged": False, "name": input_name}, {}, None)]
    kwargs: Dict[str, dict] = {}
    for cls, name, cfg in pre:
        cfg = dict(cfg)
        kwargs[name] = cfg.pop("_call_kwargs", {})
        layers.append((cls, name, cfg, {}, None))
    if base == "hub":
        name = base_name or "keras_layer"
        variables = {f"{k}:0": (k, v) for k, v in slim_variables(net).items()}
        layers.append(("KerasLayer", name, {"name": name, "trainable": False, "dtype": "float32",
                                            "batch_input_shape": input_shape,
                                            "handle": hub_handle}, variables, None))
    else:
        app = [(c, n, cfg, {k: (f"{n}/{k}", v) for k, v in vs.items()}, None)
               for c, n, cfg, vs in keras_application_layers(net)]
        if base == "keras":
            name = base_name or f"mobilenetv2_{net.width_multiplier:.2f}_{res}"
            layers.append(("Functional", name, {}, {}, app))
        else:
            layers += app[1:]
        layers.append(("GlobalAveragePooling2D", "global_average_pooling2d",
                       {"name": "global_average_pooling2d", "trainable": True, "dtype": "float32",
                        "data_format": "channels_last", "keepdims": False}, {}, None))
    head_vars = set()
    for k, d in enumerate(net.dense_head):
        if dropout and (k == 0 or k == len(net.dense_head) - 1):
            dname = "dropout" if k == 0 else f"dropout_{k}"
            layers.append(("Dropout", dname, {"name": dname, "trainable": True, "dtype": "float32",
                                              "rate": 0.2, "noise_shape": None, "seed": None},
                           {}, None))
        vs = {"kernel": (f"{d.name}/kernel", d.weights.T)}
        if d.bias is not None:
            vs["bias"] = (f"{d.name}/bias", d.bias)
        head_vars |= {full for full, _ in vs.values()}
        layers.append(("Dense", d.name, _dense_config(d, (activations or {}).get(d.name)), vs,
                       None))
    omitted = set(omit)
    slotted: List[int] = []

    def build(node: int, entries, in_functional: bool) -> List[dict]:
        """The layer objects of one model under `node`, children layer_with_weights-K
        and layer-I as Keras names them; returns the model's layer configs."""
        configs = []
        weighted = position = 0
        for cls, name, cfg, vs, nested in entries:
            configs.append({"class_name": cls, "config": cfg})
            if cls == "InputLayer" and not in_functional:
                continue  # a Sequential lists its InputLayer in the config, not in model.layers
            if nested is not None:
                child = o.keras_object("_tf_keras_network", {})
                inner = build(child, nested, True)
                cfg = _functional_config(name, [(c["class_name"], c["config"]["name"],
                                                 c["config"]) for c in inner], {})
                configs[-1]["config"] = cfg
                o.set_meta(child, _model_meta("Functional", cfg, input_shape))
                has_weights = True
            else:
                identifier = "_tf_keras_input_layer" if cls == "InputLayer" else "_tf_keras_layer"
                child = o.keras_object(identifier, _layer_meta(
                    cls, cfg, input_shape if cls in ("KerasLayer", "Dense") else None))
                var_nodes = []
                for local, (full, value) in vs.items():
                    if full not in omitted:
                        var_nodes.append(o.link(child, local, o.variable(full, value)))
                        if full in head_vars:
                            slotted.append(var_nodes[-1])
                has_weights = bool(var_nodes)
                if cls == "KerasLayer":  # the loaded Hub object holds the same variables
                    func = o.link(child, "_func", o.node())
                    lst = o.link(func, "variables", o.node("user_object", "trackable_list_wrapper"))
                    for n, var in enumerate(var_nodes):
                        o.link(lst, str(n), var)
            if has_weights:
                o.link(node, f"layer_with_weights-{weighted}", child)
                weighted += 1
            o.link(node, f"layer-{position}", child)
            position += 1
        return configs

    cls_root = "Functional" if functional else "Sequential"
    identifier = "_tf_keras_network" if functional else "_tf_keras_sequential"
    top = o.keras_object(identifier, {})
    configs = build(top, layers, functional)
    if functional:
        config = _functional_config("model", [(c["class_name"], c["config"]["name"], c["config"])
                                              for c in configs], kwargs)
    else:
        config = {"name": "sequential", "layers": configs}
    o.set_meta(top, _model_meta(cls_root, config, input_shape, training_config={
        "loss": "categorical_crossentropy", "metrics": ["accuracy"]}))
    variables_list = [i for i in o.values]
    if optimizer:
        opt = o.link(top, "optimizer", o.node("user_object", "optimizer"))
        o.link(opt, "iter", o.variable("Adam/iter", np.array(120, np.int64)))
        for hyper in ("beta_1", "beta_2", "decay", "learning_rate"):
            o.link(opt, hyper, o.variable(f"Adam/{hyper}", np.array(0.001, np.float32)))
        for var in slotted:
            full, value = o.values[var]
            for slot in ("m", "v"):
                s_node = o.variable(f"Adam/{full}/{slot}", np.zeros_like(value))
                o.slots.append((var, slot, s_node))
                o.nodes[opt].slot_variables.append((var, slot, s_node))
    all_vars = o.link(top, "variables", o.node("user_object", "trackable_list_wrapper"))
    for n, var in enumerate(variables_list):
        o.link(all_vars, str(n), var)
    api = o.link(top, "keras_api", o.node())
    o.function(api, "__call__")
    o.function(api, "call_and_return_conditional_losses")
    o.link(top, "signatures", o.node("user_object", "signature_map"))

    # Paths and checkpoint keys, as TF assigns them.
    graph = smp.ObjectGraph(o.nodes)
    paths = graph.paths()
    keyed: Dict[str, np.ndarray] = {}
    for i, (full, value) in o.values.items():
        if i in paths:
            key = "/".join(smp.escape_local_name(p) for p in paths[i]) + \
                f"/{smp.ATTRIBUTES}/{smp.VARIABLE_VALUE}"
        else:  # a slot: <variable path>/.OPTIMIZER_SLOT/<optimizer path>/<slot name>
            original, slot = next((v, sl) for v, sl, sv in o.slots if sv == i)
            key = "/".join(smp.escape_local_name(p) for p in paths[original]) + \
                f"/{smp.OPTIMIZER_SLOT}/optimizer/{slot}/{smp.ATTRIBUTES}/{smp.VARIABLE_VALUE}"
        o.nodes[i].attributes = [(smp.VARIABLE_VALUE, full, key)]
        keyed[key] = value
    records = []
    for node, ident, meta in o.keras:
        path = "root" if node == top else "root." + ".".join(paths[node])
        if edit_metadata is not None:
            edit_metadata(path, meta)
        records.append(smp.KerasNode(node_id=node, node_path=path, identifier=ident,
                                     metadata=json.dumps(meta)))
        if metadata == "object_graph":
            o.nodes[node].metadata = records[-1].metadata
    os.makedirs(os.path.join(model_dir, "variables"), exist_ok=True)
    write_bundle(os.path.join(model_dir, "variables", "variables"), keyed,
                 object_graph=smp.encode_trackable_object_graph(graph), compress=compress)
    var_types = {i: (_DTYPE_ENUM[np.asarray(v).dtype.newbyteorder("=")], np.shape(v))
                 for i, (_, v) in o.values.items()}
    with open(os.path.join(model_dir, "saved_model.pb"), "wb") as f:
        f.write(smp.encode_saved_model(smp.encode_saved_object_graph(graph, var_types),
                                       tensorflow_version=TF_VERSION))
    if metadata == "file":
        with open(os.path.join(model_dir, "keras_metadata.pb"), "wb") as f:
            f.write(smp.encode_saved_metadata(records))
    return model_dir
