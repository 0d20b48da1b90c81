""".featx file -> ir.Network, checking identifier, format version and payload CRC first.

The Python twin of the runtime's loader; the ONNX exporter and the golden
tools use it to start from exactly what a .featx file says. A prepacked file
(version 3) reads back as its folded weights: each conv's kernel unpacked
from the panels, its folded bias as the conv bias, no batch norm (the same
network; written raw again it folds to the same floats, scale 1).
"""

from __future__ import annotations

import os
import struct
from typing import Optional

import numpy as np

from . import ir, prepack
from .crc32c import crc32c
from .writer import FILE_IDENTIFIER

from featx.fb.ModelFile import ModelFile
from featx.fb.Network import Network

_ACTIVATIONS = {0: "none", 1: "relu6", 2: "relu"}
_KINDS = {0: "full", 1: "depthwise"}


def _floats(obj, name: str) -> Optional[np.ndarray]:
    if getattr(obj, f"{name}IsNone")():
        return None
    return np.array(getattr(obj, f"{name}AsNumpy")(), dtype=np.float32)


def _text(value) -> str:
    return value.decode("utf-8") if value is not None else ""


def _conv(fb, where: str, prepacked: bool) -> ir.Conv:
    name = _text(fb.Name())
    kind = _KINDS.get(fb.Kind())
    if kind is None:
        raise ValueError(f"{where}: layer {name}: unknown conv kind {fb.Kind()}")
    activation = _ACTIVATIONS.get(fb.Activation())
    if activation is None:
        raise ValueError(f"{where}: layer {name}: unknown activation {fb.Activation()}")
    kh, kw, cin, cout = fb.KernelH(), fb.KernelW(), fb.InChannels(), fb.OutChannels()
    shape = (kh, kw, cin, cout) if kind == "full" else (kh, kw, cout)
    packed = fb.Packed()
    if prepacked != (packed is not None):
        raise ValueError(f"{where}: layer {name}: " + ("no prepacked weights in a prepacked (version "
                         f"{ir.FORMAT_VERSION_PREPACKED}) file" if prepacked else
                         f"prepacked weights in a file of version {ir.FORMAT_VERSION_PREPACKED - 1} or older"))
    if packed is not None:
        return _packed_conv(fb, packed, name, kind, shape, activation, where)
    kernel = _floats(fb, "Kernel")
    if kernel is None or kernel.size != int(np.prod(shape)):
        found = None if kernel is None else kernel.size
        raise ValueError(f"{where}: layer {name}: kernel has {found} values, shape says {shape}")
    bn = None
    fbn = fb.BatchNorm()
    if fbn is not None:
        bn = ir.BatchNorm(gamma=_floats(fbn, "Gamma"), beta=_floats(fbn, "Beta"),
                          moving_mean=_floats(fbn, "MovingMean"),
                          moving_variance=_floats(fbn, "MovingVariance"),
                          epsilon=float(fbn.Epsilon()))
    return ir.Conv(name=name, kind=kind, kernel=kernel.reshape(shape), stride=fb.Stride(),
                   bias=_floats(fb, "Bias"), batch_norm=bn, activation=activation)


def _packed_conv(fb, packed, name, kind, shape, activation, where) -> ir.Conv:
    if packed.PanelWidth() != prepack.PANEL_WIDTH:
        raise ValueError(f"{where}: layer {name}: packed in {packed.PanelWidth()}-column panels, "
                         f"featx uses {prepack.PANEL_WIDTH}")
    weights, bias = _floats(packed, "Weights"), _floats(packed, "Bias")
    cout = shape[-1]
    if bias.size != cout:
        raise ValueError(f"{where}: layer {name}: packed bias has {bias.size} values, expected {cout}")
    try:
        if kind == "full":
            kernel = prepack.unpack_panels(weights, int(np.prod(shape[:3])), cout)
        elif weights.size == int(np.prod(shape)):
            kernel = weights
        else:
            raise ValueError(f"{weights.size} values, shape says {shape}")
    except ValueError as e:
        raise ValueError(f"{where}: layer {name}: packed weights: {e}") from None
    return ir.Conv(name=name, kind=kind, kernel=np.ascontiguousarray(kernel).reshape(shape),
                   stride=fb.Stride(), bias=bias, batch_norm=None, activation=activation)


def network_from_payload(payload: bytes, where: str = "payload", prepacked: bool = False) -> ir.Network:
    net = Network.GetRootAs(bytearray(payload), 0)
    norm = net.InputNormalization()
    blocks = []
    for i in range(net.BlocksLength()):
        fb = net.Blocks(i)
        blocks.append(ir.Block(
            name=_text(fb.Name()), expansion=fb.Expansion(), stride=fb.Stride(),
            in_channels=fb.InChannels(), out_channels=fb.OutChannels(),
            expand=_conv(fb.Expand(), where, prepacked) if fb.Expand() is not None else None,
            depthwise=_conv(fb.Depthwise(), where, prepacked),
            project=_conv(fb.Project(), where, prepacked)))
    classifier = None
    fc = net.Classifier()
    if fc is not None:
        weights = _floats(fc, "Weights")
        classes = fc.NumClasses()
        if classes <= 0 or weights.size % classes:
            raise ValueError(f"{where}: classifier weights ({weights.size} values) do not split "
                             f"into {classes} classes")
        classifier = ir.Classifier(weights=weights.reshape(classes, -1), bias=_floats(fc, "Bias"),
                                   label_offset=fc.LabelOffset())
    dense_head = []
    for i in range(net.DenseHeadLength()):
        d = net.DenseHead(i)
        weights = _floats(d, "Weights")
        if d.InFeatures() <= 0 or d.OutFeatures() <= 0 or weights.size != d.InFeatures() * d.OutFeatures():
            raise ValueError(f"{where}: dense layer {_text(d.Name())} weights ({weights.size} values) "
                             f"are not {d.OutFeatures()} x {d.InFeatures()}")
        if d.Activation() >= len(ir.DENSE_ACTIVATIONS):
            raise ValueError(f"{where}: dense layer {_text(d.Name())}: unknown activation {d.Activation()}")
        dense_head.append(ir.Dense(name=_text(d.Name()), weights=weights.reshape(d.OutFeatures(), -1),
                                   bias=_floats(d, "Bias"),
                                   activation=ir.DENSE_ACTIVATIONS[d.Activation()]))
    labels = [_text(net.Labels(i)) for i in range(net.LabelsLength())]
    goldens = []
    for i in range(net.GoldensLength()):
        g = net.Goldens(i)
        goldens.append(ir.Golden(
            name=_text(g.Name()),
            input=_floats(g, "Input").reshape(g.Height(), g.Width(), 3),
            output=_floats(g, "Output"), pool=_text(g.Pool()), reference=_text(g.Reference()),
            max_abs_tolerance=float(g.MaxAbsTolerance())))
    prov = net.Provenance()
    result = ir.Network(
        # float32 in the file: 0.35 comes back as 0.3499999940395355 without rounding
        width_multiplier=round(float(net.WidthMultiplier()), 6), resolution=net.Resolution(),
        input_scale=float(norm.Scale()), input_offset=float(norm.Offset()),
        stem=_conv(net.Stem(), where, prepacked), blocks=blocks,
        head=_conv(net.Head(), where, prepacked),
        classifier=classifier,
        source=_text(prov.Source()) if prov else "",
        source_format=_text(prov.SourceFormat()) if prov else "",
        notes=_text(prov.Notes()) if prov else "",
        goldens=goldens, architecture=_text(net.Architecture()),
        dense_head=dense_head, labels=labels)
    result.validate()
    return result


def from_bytes(data: bytes, where: str = "model") -> ir.Network:
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise ValueError(f"{where}: not a featx model (file identifier {bytes(data[4:8])!r}, "
                         f"expected {FILE_IDENTIFIER!r})")
    mf = ModelFile.GetRootAs(bytearray(data), 0)
    known = (ir.FORMAT_VERSION, ir.FORMAT_VERSION_WITH_HEAD, ir.FORMAT_VERSION_PREPACKED)
    if mf.FormatVersion() not in known:
        raise ValueError(f"{where}: format version {mf.FormatVersion()}, this exporter reads "
                         f"{known[0]} to {known[-1]}")
    if mf.PayloadIsNone():
        raise ValueError(f"{where}: no payload")
    payload = mf.PayloadAsNumpy().tobytes()
    if crc32c(payload) != mf.PayloadCrc32c():
        raise ValueError(f"{where}: checksum mismatch (payload corrupt)")
    return network_from_payload(payload, where, mf.FormatVersion() == ir.FORMAT_VERSION_PREPACKED)


def read_featx(path) -> ir.Network:
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        return from_bytes(data, path)
    except (IndexError, TypeError, struct.error) as e:  # flatbuffers runtime on damaged offsets
        raise ValueError(f"{path}: damaged featx file ({e})") from None
