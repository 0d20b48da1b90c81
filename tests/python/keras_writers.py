"""Keras model files written as Keras writes them, from an ir.Network, for the reader tests.

No TensorFlow or Keras here, so the layouts are reproduced by hand from the
Keras sources (keras.applications.mobilenet_v2, the legacy hdf5 saving of
Keras 2, saving_lib of Keras 3 and tf.keras 2.12-2.15) and kept apart from
the reader: class names are snake-cased from a table, not a regex, and the
archive group names come from a literal simulation of
saving_lib._save_container_state (tf.keras walks the
_layer_checkpoint_dependencies dict, which lists every layer with weights
twice: 2.12/2.13 count both entries, 2.14+ skip the visited one first).

A model is built from `Layer` and `Model` objects; `keras2_h5`,
`keras_archive` and `weights_h5` write it, and each returns where it put
the Dense layers' kernel and bias (`DenseRef`), so a test can read them back
with h5py itself.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import h5py
import numpy as np

from featx_export import ir

SNAKE = {  # class name -> keras naming.to_snake_case(class name), written out
    "InputLayer": "input_layer", "Conv2D": "conv2d", "DepthwiseConv2D": "depthwise_conv2d",
    "BatchNormalization": "batch_normalization", "ReLU": "re_lu", "ZeroPadding2D": "zero_padding2d",
    "Add": "add", "GlobalAveragePooling2D": "global_average_pooling2d",
    "GlobalMaxPooling2D": "global_max_pooling2d", "Dense": "dense", "Dropout": "dropout",
    "Functional": "functional", "Sequential": "sequential", "Rescaling": "rescaling",
    "Activation": "activation", "Flatten": "flatten", "Softmax": "softmax",
    "RandomFlip": "random_flip", "RandomRotation": "random_rotation", "Lambda": "lambda",
    "TFOpLambda": "tf_op_lambda", "KerasLayer": "keras_layer",
}


@dataclass
class Layer:
    cls: str
    name: str
    config: Dict = field(default_factory=dict)   # class-specific settings, Keras 2 spelling
    weights: List = field(default_factory=list)  # [(variable, array, trainable)] in creation order
    inputs: List[str] = field(default_factory=list)  # Functional members: the layers feeding it
    kwargs: Dict = field(default_factory=dict)   # call kwargs (TFOpLambda's y)
    full_weight_names: bool = False              # Hub KerasLayer: variables keep the module's names
    op_constant: Optional[float] = None          # a Keras 3 operation (x / 127.5): not a layer

    @property
    def has_weights(self) -> bool:
        return bool(self.weights)


@dataclass
class Model:
    cls: str                        # "Sequential" | "Functional"
    name: str
    layers: List                    # Layer | Model, in config order
    inputs: List[str] = field(default_factory=list)   # Functional: input layer names
    outputs: List[str] = field(default_factory=list)  # Functional: output layer names
    trainable: bool = True
    config: Dict = field(default_factory=dict)
    kwargs: Dict = field(default_factory=dict)
    call_inputs: List[str] = field(default_factory=list)  # inside a Functional: what feeds it

    @property
    def has_weights(self) -> bool:
        return any(m.has_weights for m in self.layers)

    def leaves(self):
        for m in self.layers:
            if isinstance(m, Model):
                yield from m.leaves()
            else:
                yield m


def _inputs_of(m) -> List[str]:
    return m.call_inputs if isinstance(m, Model) else m.inputs


# ----------------------------------------------------------------------------- building models

def _bn(name, conv: ir.Conv):
    bn = conv.batch_norm
    return Layer("BatchNormalization", name,
                 {"axis": -1, "momentum": 0.999, "epsilon": float(bn.epsilon), "center": True,
                  "scale": True},
                 [("gamma", bn.gamma, True), ("beta", bn.beta, True),
                  ("moving_mean", bn.moving_mean, False), ("moving_variance", bn.moving_variance, False)])


def _conv(name, conv: ir.Conv, padding="same"):
    k = conv.kernel
    return Layer("Conv2D", name,
                 {"filters": int(k.shape[3]), "kernel_size": [int(k.shape[0]), int(k.shape[1])],
                  "strides": [conv.stride, conv.stride], "padding": padding,
                  "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
                  "activation": "linear", "use_bias": False},
                 [("kernel", k, True)])


def _depthwise(name, conv: ir.Conv, padding):
    k = conv.kernel[:, :, :, None]
    return Layer("DepthwiseConv2D", name,
                 {"kernel_size": [int(k.shape[0]), int(k.shape[1])], "strides": [conv.stride, conv.stride],
                  "padding": padding, "data_format": "channels_last", "dilation_rate": [1, 1],
                  "groups": 1, "activation": "linear", "use_bias": False, "depth_multiplier": 1},
                 [("depthwise_kernel", k, True)])


def _relu6(name):
    return Layer("ReLU", name, {"max_value": 6.0, "negative_slope": 0.0, "threshold": 0.0})


def _link(layers: List[Layer], layer: Layer, *inputs: str) -> str:
    layer.inputs = list(inputs)
    layers.append(layer)
    return layer.name


def mobilenet_v2(net: ir.Network, rows: int = 96, input_name: str = "input_1", name: Optional[str] = None,
                 include_top: bool = False, pooling: Optional[str] = None, inline_into=None,
                 trainable: bool = False) -> Model:
    """keras.applications.MobileNetV2 as tf.keras builds it (TF 2.x applications code):
    Conv1 'same', ZeroPadding2D + 'valid' depthwise at stride 2, Add on residual blocks."""
    alpha = net.width_multiplier
    name = name or f"mobilenetv2_{alpha:0.2f}_{rows}"
    layers: List = [Layer("InputLayer", input_name,
                          {"batch_input_shape": [None, rows, rows, 3], "dtype": "float32",
                           "sparse": False, "ragged": False})]
    size = -(-rows // 2)
    x = _link(layers, _conv("Conv1", net.stem), input_name)
    x = _link(layers, _bn("bn_Conv1", net.stem), x)
    x = _link(layers, _relu6("Conv1_relu"), x)
    for i, block in enumerate(net.blocks):
        prefix = "expanded_conv_" if i == 0 else f"block_{i}_"
        inputs = x
        if block.expand is not None:
            x = _link(layers, _conv(prefix + "expand", block.expand), x)
            x = _link(layers, _bn(prefix + "expand_BN", block.expand), x)
            x = _link(layers, _relu6(prefix + "expand_relu"), x)
        if block.stride == 2:
            pad = [[0, 1], [0, 1]] if size % 2 == 0 else [[1, 1], [1, 1]]  # imagenet_utils.correct_pad
            x = _link(layers, Layer("ZeroPadding2D", prefix + "pad",
                                    {"padding": pad, "data_format": "channels_last"}), x)
            size = -(-size // 2)
        x = _link(layers, _depthwise(prefix + "depthwise", block.depthwise,
                                     "same" if block.stride == 1 else "valid"), x)
        x = _link(layers, _bn(prefix + "depthwise_BN", block.depthwise), x)
        x = _link(layers, _relu6(prefix + "depthwise_relu"), x)
        x = _link(layers, _conv(prefix + "project", block.project), x)
        x = _link(layers, _bn(prefix + "project_BN", block.project), x)
        if block.in_channels == block.out_channels and block.stride == 1:
            x = _link(layers, Layer("Add", prefix + "add"), inputs, x)
    x = _link(layers, _conv("Conv_1", net.head), x)
    x = _link(layers, _bn("Conv_1_bn", net.head), x)
    x = _link(layers, _relu6("out_relu"), x)
    if include_top:
        x = _link(layers, Layer("GlobalAveragePooling2D", "global_average_pooling2d",
                                {"data_format": "channels_last", "keepdims": False}), x)
        c = net.classifier
        x = _link(layers, dense_layer("predictions", c.weights, c.bias, "softmax"), x)
    elif pooling == "avg":
        x = _link(layers, Layer("GlobalAveragePooling2D", "global_average_pooling2d",
                                {"data_format": "channels_last", "keepdims": False}), x)
    return Model("Functional", name, layers, inputs=[input_name], outputs=[x], trainable=trainable)


def dense_layer(name, weights, bias, activation) -> Layer:
    """A Dense layer from featx-layout weights [out, in]: Keras keeps kernel [in, out]."""
    w = [("kernel", np.ascontiguousarray(np.asarray(weights).T), True)]
    if bias is not None:
        w.append(("bias", np.asarray(bias), True))
    return Layer("Dense", name, {"units": int(np.asarray(weights).shape[0]), "activation": activation,
                                 "use_bias": bias is not None}, w)


def head_layers(net: ir.Network) -> List[Layer]:
    return [dense_layer(d.name, d.weights, d.bias, d.activation) for d in net.dense_head]


def gap(name="global_average_pooling2d"):
    return Layer("GlobalAveragePooling2D", name, {"data_format": "channels_last", "keepdims": False})


def input_layer(name, rows, keras3=False):
    shape = [None, rows, rows, 3]
    return Layer("InputLayer", name, {"batch_input_shape": shape, "dtype": "float32",
                                      "sparse": False, "ragged": False})


def sequential_model(net, rows=96, with_input=False, name="sequential") -> Model:
    """Sequential([MobileNetV2(include_top=False, weights=...), GlobalAveragePooling2D(),
    Dense(128, relu, name='embedding_layer'), Dense(10, softmax)])."""
    layers = ([input_layer("input_2", rows)] if with_input else []) + [
        mobilenet_v2(net, rows), gap()] + head_layers(net)
    return Model("Sequential", name, layers)


def functional_inline(net, rows=96) -> Model:
    """Model(base.input, Dense(...)(Dropout(GlobalAveragePooling2D()(base.output)))): the
    base's layers sit directly in the outer model."""
    base = mobilenet_v2(net, rows, pooling="avg")
    layers = list(base.layers)
    x = base.outputs[0]
    x = _link(layers, Layer("Dropout", "dropout", {"rate": 0.2, "noise_shape": None, "seed": None}), x)
    for d in head_layers(net):
        x = _link(layers, d, x)
    return Model("Functional", "model", layers, inputs=base.inputs, outputs=[x])


def functional_nested(net, rows=96, rescaling=True, tf_ops=False, keras3_ops=False) -> Model:
    """The transfer-learning tutorial: Input -> Sequential augmentation -> Rescaling(1/127.5,
    offset=-1) (or preprocess_input's tf.math ops) -> base(x, training=False) -> GAP ->
    Dropout -> Dense head; the last Dense linear, softmax as a separate Activation."""
    layers: List = [input_layer("input_2", rows)]
    aug = Model("Sequential", "data_augmentation", [
        Layer("RandomFlip", "random_flip", {"mode": "horizontal", "seed": None}),
        Layer("RandomRotation", "random_rotation", {"factor": 0.2, "fill_mode": "reflect"})])
    aug.call_inputs = ["input_2"]
    layers.append(aug)
    x = aug.name
    if rescaling:
        x = _link(layers, Layer("Rescaling", "rescaling", {"scale": 1.0 / 127.5, "offset": -1.0}), x)
    if tf_ops:
        op = Layer("TFOpLambda", "tf.math.truediv", {"function": "math.truediv"}, kwargs={"y": 127.5})
        x = _link(layers, op, x)
        op = Layer("TFOpLambda", "tf.math.subtract", {"function": "math.subtract"}, kwargs={"y": 1.0})
        x = _link(layers, op, x)
    if keras3_ops:  # preprocess_input on a Keras 3 KerasTensor: x /= 127.5; x -= 1.0
        x = _link(layers, Layer("TrueDivide", "true_divide", op_constant=127.5), x)
        x = _link(layers, Layer("Subtract", "subtract", op_constant=1.0), x)
    base = mobilenet_v2(net, rows)
    base.call_inputs = [x]
    base.kwargs = {"training": False}
    layers.append(base)
    x = _link(layers, gap(), base.name)
    x = _link(layers, Layer("Dropout", "dropout", {"rate": 0.2, "noise_shape": None, "seed": None}), x)
    heads = head_layers(net)
    last = heads[-1]
    act = last.config["activation"]
    last.config["activation"] = "linear"
    for d in heads:
        x = _link(layers, d, x)
    x = _link(layers, Layer("Activation", "activation", {"activation": act}), x)
    return Model("Functional", "model", layers, inputs=["input_2"], outputs=[x])


def teachable_machine(net, rows=224) -> Model:
    """A Teachable Machine image export: Sequential [Sequential [the truncated MobileNetV2
    'model1' (up to out_relu), GlobalAveragePooling2D], Sequential [Dense(100, relu),
    Dense(N, softmax, use_bias=False)]] (tfjs-style layer names)."""
    base = mobilenet_v2(net, rows, name="model1")
    inner = Model("Sequential", "sequential_1",
                  [base, gap("global_average_pooling2d_GlobalAveragePooling2D1")])
    head = Model("Sequential", "sequential_3", head_layers(net))
    return Model("Sequential", "sequential_4", [inner, head])


def hub_sequential(net, handle) -> Model:
    """Sequential([hub.KerasLayer(handle, trainable=False), Dense..., Dense...])."""
    from featx_export.mobilenet_names import slim_variables
    weights = [(name, value, False) for name, value in slim_variables(net).items()]
    hub = Layer("KerasLayer", "keras_layer", {"handle": handle, "output_shape": [net.feature_dim]},
                weights, full_weight_names=True)
    return Model("Sequential", "sequential", [hub] + head_layers(net))


# ----------------------------------------------------------------------------- configs

def _k3_dtype():
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
            "registered_name": None}


def _initializer(cls, dialect):
    if dialect == "keras2":
        return {"class_name": cls, "config": {"seed": None} if cls != "Zeros" else {}}
    return {"module": "keras.initializers", "class_name": cls,
            "config": {"seed": None} if cls != "Zeros" else {}, "registered_name": None}


def _layer_config(layer: Layer, dialect: str) -> dict:
    cfg = {"name": layer.name, "trainable": True,
           "dtype": _k3_dtype() if dialect == "keras3" else "float32"}
    c = dict(layer.config)
    if layer.cls == "InputLayer":
        shape = c.pop("batch_input_shape")
        if dialect == "keras3":
            return {"batch_shape": shape, "dtype": "float32", "sparse": False, "name": layer.name}
        return {"batch_input_shape": shape, "dtype": "float32", "sparse": False, "ragged": False,
                "name": layer.name}
    if layer.cls == "BatchNormalization" and dialect != "keras3":
        c["axis"] = [3]  # tf.keras stores the axis list it normalised at build time
    if layer.cls in ("Conv2D", "Dense"):
        c["kernel_initializer"] = _initializer("GlorotUniform", dialect)
        c["bias_initializer"] = _initializer("Zeros", dialect)
        c.update(kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None)
    if layer.cls == "DepthwiseConv2D":
        c["depthwise_initializer"] = _initializer("GlorotUniform", dialect)
    cfg.update(c)
    return cfg


def _k3_tensor(name):
    return {"class_name": "__keras_tensor__",
            "config": {"shape": None, "dtype": "float32", "keras_history": [name, 0, 0]}}


def _inbound(m, dialect) -> list:
    inputs = _inputs_of(m)
    if not inputs:
        return []
    if dialect == "keras3":
        args = [_k3_tensor(inputs[0])] if len(inputs) == 1 else [[_k3_tensor(n) for n in inputs]]
        return [{"args": args, "kwargs": dict(m.kwargs)}]
    refs = [[n, 0, 0, dict(m.kwargs)] for n in inputs]
    if isinstance(m, Layer) and m.cls == "TFOpLambda":
        return refs  # TFOpLambda keeps its input structure: one level less nesting
    return [refs]


_MODULES = {"keras2": None, "tfkeras": "keras.layers", "keras3": "keras.layers"}


def serialize(m, dialect: str, in_functional: bool = False) -> dict:
    """m as Keras writes it: dialect "keras2" (h5 model_config, model.to_json()), "tfkeras"
    (tf.keras 2.13-2.15 .keras config.json) or "keras3"."""
    if isinstance(m, Model):
        cfg = {"name": m.name, "trainable": m.trainable,
               "layers": [serialize(c, dialect, m.cls == "Functional") for c in m.layers]}
        if m.cls == "Functional":
            cfg["input_layers"] = [[n, 0, 0] for n in m.inputs]
            cfg["output_layers"] = [[n, 0, 0] for n in m.outputs]
        out = {"class_name": m.cls, "config": cfg}
        if dialect != "keras2":
            out = {"module": ("keras" if m.cls == "Sequential" else
                              "keras.src.engine.functional" if dialect == "tfkeras" else
                              "keras.src.models.functional"),
                   "class_name": m.cls, "config": cfg,
                   "registered_name": "Functional" if m.cls == "Functional" else None,
                   "build_config": {"input_shape": None}}
    elif m.op_constant is not None:
        assert dialect == "keras3" and in_functional
        return {"module": "keras.src.ops.numpy", "class_name": m.cls, "config": {"name": m.name},
                "registered_name": m.cls, "name": m.name,
                "inbound_nodes": [{"args": [_k3_tensor(m.inputs[0]), m.op_constant], "kwargs": {}}]}
    else:
        cfg = _layer_config(m, dialect)
        out = {"class_name": m.cls, "config": cfg}
        if dialect != "keras2":
            out = {"module": "keras.layers", "class_name": m.cls, "config": cfg,
                   "registered_name": None}
            if m.has_weights:
                out["build_config"] = {"input_shape": None}
    if in_functional:
        out["name"] = m.name
        out["inbound_nodes"] = _inbound(m, dialect)
    return out


def model_json(model: Model, dialect="keras2", keras_version="2.15.0") -> str:
    """model.to_json() (Keras 2) or an archive's config.json."""
    cfg = serialize(model, dialect)
    if dialect == "keras2":
        cfg = dict(cfg, keras_version=keras_version, backend="tensorflow")
    return json.dumps(cfg)


# ----------------------------------------------------------------------------- files

@dataclass
class DenseRef:
    name: str
    kernel: str          # HDF5 path of the kernel [in, out]
    bias: Optional[str]  # HDF5 path of the bias, or None
    activation: str


def _ordered(weights, model_trainable=True):
    if not model_trainable:
        return list(weights)
    return [w for w in weights if w[2]] + [w for w in weights if not w[2]]


def _top_members(model: Model):
    # model.layers: a Sequential leaves out its InputLayer, a Functional keeps them; Keras 3
    # operations are not layers.
    members = [m for m in model.layers if getattr(m, "op_constant", None) is None]
    if model.cls == "Sequential" and members and members[0].cls == "InputLayer":
        return members[1:]
    return members


def keras2_h5(path, model: Model, keras_version="2.15.0", with_config=True, name_prefix="",
              config_dialect="keras2") -> List[DenseRef]:
    """model.save('m.h5') (with_config) or model.save_weights('m.h5') of tf.keras 2.x
    (config_dialect="keras3" with name_prefix: Keras 3's legacy .h5, whose configs carry
    Keras 3 inbound nodes and whose weight names are variable paths)."""
    refs: List[DenseRef] = []
    with h5py.File(path, "w") as f:
        if with_config:
            f.attrs["backend"] = b"tensorflow"
            f.attrs["keras_version"] = keras_version.encode()
            f.attrs["model_config"] = json.dumps(serialize(model, config_dialect)).encode("utf8")
            root = f.create_group("model_weights")
        else:
            root = f
        members = _top_members(model)
        root.attrs["layer_names"] = np.array([m.name.encode() for m in members])
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = keras_version.encode()
        for m in sorted(members, key=lambda x: x.name):
            g = root.create_group(m.name)
            entries = []  # (weight name, value)
            if isinstance(m, Model):
                leaves = list(m.leaves())
                pairs = [(leaf, w) for leaf in leaves for w in leaf.weights]
                if m.trainable:  # model.trainable_weights first, then the rest
                    pairs = [p for p in pairs if p[1][2]] + [p for p in pairs if not p[1][2]]
                for leaf, (var, value, _t) in pairs:
                    name = var if leaf.full_weight_names else f"{name_prefix}{leaf.name}/{var}"
                    entries.append((f"{name}:0", value))
            else:
                for var, value, _t in _ordered(m.weights):
                    name = var if m.full_weight_names else f"{m.name}/{var}"
                    entries.append((f"{name}:0", value))
            g.attrs["weight_names"] = np.array([n.encode() for n, _ in entries]) if entries else np.array([])
            for n, value in entries:
                g.create_dataset(n, data=value)
        for leaf_parent, leaf in _dense_leaves(model):
            top = leaf_parent or leaf.name
            base = f"model_weights/{top}/" if with_config else f"{top}/"
            inner = f"{name_prefix}{leaf.name}" if leaf_parent else leaf.name
            refs.append(DenseRef(leaf.name, f"{base}{inner}/kernel:0",
                                 f"{base}{inner}/bias:0" if leaf.config["use_bias"] else None,
                                 leaf.config["activation"]))
    return refs


def _dense_leaves(model: Model):
    """(top-level group or None, Dense layer) in model order."""
    for m in _top_members(model):
        if isinstance(m, Model):
            for leaf in m.leaves():
                if leaf.cls == "Dense":
                    yield m.name, leaf
        elif m.cls == "Dense":
            yield None, m


def _archive_h5(h5, model: Model, dialect: str, sep: str = "/") -> Dict[str, str]:
    """saving_lib's HDF5 store: "vars" groups named by class and position. Returns
    {Dense layer name: its vars group path}."""
    dense_paths: Dict[str, str] = {}
    container_name = "layers" if dialect == "keras3" else "_layer_checkpoint_dependencies"
    visited = set()

    def make(path):
        return (h5.create_group(path) if path else h5).create_group("vars")

    def save(obj, path):
        group = make(path)
        if isinstance(obj, Layer):
            for i, (_var, value, _t) in enumerate(_ordered(obj.weights)):
                group.create_dataset(str(i), data=value)
            if obj.cls == "Dense":
                dense_paths[obj.name] = path + "/vars"
            return
        container(obj, path)

    def container(model, path):
        members = list(_top_members(model))
        if dialect == "keras3":
            listed = members
        else:
            # Functional._layer_checkpoint_dependencies: "layer_with_weights-k" then "layer-i".
            listed = []
            for m in members:
                if m.has_weights:
                    listed.append(m)
                listed.append(m)
        used: Dict[str, int] = {}
        child = f"{path}{sep}{container_name}" if path else container_name
        for m in listed:
            if dialect == "tfkeras" and id(m) in visited:
                continue  # 2.14+: the repeat is skipped before it is named
            name = SNAKE[m.cls]
            if name in used:
                used[name] += 1
                name = f"{name}_{used[name]}"
            else:
                used[name] = 0
            if id(m) in visited:
                continue  # 2.12/2.13: named (the counter moved), then skipped by _save_state
            visited.add(id(m))
            save(m, f"{child}{sep}{name}")

    make("")
    visited.add(id(model))
    container(model, "")
    return dense_paths


def _refs(model: Model, paths: Dict[str, str]) -> List[DenseRef]:
    out = []
    for _top, leaf in _dense_leaves(model):
        p = paths[leaf.name]
        out.append(DenseRef(leaf.name, f"{p}/0", f"{p}/1" if leaf.config["use_bias"] else None,
                            leaf.config["activation"]))
    return out


DIALECT_VERSIONS = {"keras3": "3.3.3", "tfkeras": "2.15.0", "tfkeras213": "2.13.1",
                    "tfkeras216": "2.16.0"}


def keras_archive(path, model: Model, dialect="keras3", sep="/", optimizer=False,
                  keras_version=None) -> List[DenseRef]:
    """model.save('m.keras'): dialect keras3, tfkeras (2.14/2.15), tfkeras213 (2.12/2.13) or
    tfkeras216 (tf_keras 2.16+: its saving_lib walks attributes in reverse order, so the
    public "layers" list comes first and the paths are Keras 3's); sep="\\\\" writes group
    paths the way a Windows save does."""
    version = keras_version or DIALECT_VERSIONS[dialect]
    store = {"tfkeras216": "keras3"}.get(dialect, dialect)
    config_dialect = "keras3" if dialect == "keras3" else "tfkeras"
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:
        paths = _archive_h5(h5, model, store, sep)
        if optimizer:
            opt = h5.create_group("optimizer").create_group("vars")
            opt.create_dataset("0", data=np.array(12, np.int64))
            opt.create_dataset("1", data=np.zeros(3, np.float32))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": version,
                                                 "date_saved": "2024-05-01@12:00:00"}))
        cfg = serialize(model, config_dialect)
        cfg["compile_config"] = None
        zf.writestr("config.json", json.dumps(cfg))
        zf.writestr("model.weights.h5", buf.getvalue())
    return _refs(model, paths)


def weights_h5(path, model: Model, dialect="keras3") -> List[DenseRef]:
    """model.save_weights('m.weights.h5')."""
    store = {"keras3": "keras3", "tfkeras": "tfkeras", "tfkeras213": "tfkeras213"}[dialect]
    with h5py.File(path, "w") as h5:
        paths = _archive_h5(h5, model, store)
    return _refs(model, paths)


def archive_config_json(model: Model, dialect="keras3") -> str:
    return json.dumps(serialize(model, "keras3" if dialect == "keras3" else "tfkeras"))


def read_dense(path, refs: List[DenseRef], member: Optional[str] = None):
    """The Dense layers at `refs`, read with h5py (from a zip member when given):
    [(weights [out, in], bias or None, activation)]."""
    def from_h5(h5):
        out = []
        for r in refs:
            kernel = np.asarray(h5[r.kernel][()], np.float64)
            bias = None if r.bias is None else np.asarray(h5[r.bias][()], np.float64)
            out.append((kernel.T, bias, r.activation))
        return out

    if member:
        with zipfile.ZipFile(path) as zf:
            with h5py.File(io.BytesIO(zf.read(member)), "r") as h5:
                return from_h5(h5)
    with h5py.File(path, "r") as h5:
        return from_h5(h5)
