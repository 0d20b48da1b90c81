"""ir.Network -> .featx bytes (schema include/featx/schema/featx.fbs).

Two FlatBuffers: the Network is built first into its own buffer (the payload),
then wrapped in a ModelFile that carries format_version and the payload's
CRC-32C, finished with identifier "FTX1".

Alignment: float vectors inside the payload start on 16-byte boundaries and
the payload vector itself starts on a 16-byte boundary of the file, so a
mapped file (page aligned) gives the runtime aligned float arrays to read in
place.

Prepacked files (prepacked=True, format version 3) store every conv folded
and packed as the runtime runs it (prepack.py), in place of the raw kernel
and batch norm, and align every float vector to 64 bytes (PREPACKED_ALIGNMENT):
FlatBuffers aligns a vector relative to the buffer's end and pads the whole
buffer to its largest alignment, so a 64-byte aligned vector of the payload
is 64-byte aligned from the payload's start, and the payload from the file's.
"""

from __future__ import annotations

import os
from typing import Optional

import flatbuffers
import numpy as np

from . import ir, prepack
from .crc32c import crc32c

from featx.fb import (BatchNorm as fbBatchNorm, Block as fbBlock, Classifier as fbClassifier,
                      ConvLayer as fbConvLayer, DenseLayer as fbDenseLayer,
                      GoldenSample as fbGolden,
                      InputNormalization as fbInputNorm, ModelFile as fbModelFile,
                      Network as fbNetwork, PackedConv as fbPackedConv,
                      Provenance as fbProvenance)

ALIGNMENT = 16
# A cache line, an AVX-512 vector: what the runtime's own weight arena gives.
PREPACKED_ALIGNMENT = 64
FILE_IDENTIFIER = b"FTX1"

_ACTIVATIONS = {"none": 0, "relu6": 1, "relu": 2}
_KINDS = {"full": 0, "depthwise": 1}
_DENSE_ACTIVATIONS = {"linear": 0, "relu": 1, "relu6": 2, "softmax": 3}


def _floats(b: flatbuffers.Builder, values, align: int = ALIGNMENT) -> int:
    """A [float] vector whose first element is `align`-aligned."""
    a = np.ascontiguousarray(np.asarray(values, dtype="<f4").ravel())
    b.StartVector(4, a.size, align)
    b.head = b.head - a.nbytes
    b.Bytes[b.head:b.head + a.nbytes] = a.tobytes()
    return b.EndVector()


def _string(b: flatbuffers.Builder, s: Optional[str]) -> Optional[int]:
    return None if s is None else b.CreateString(s)


def _packed(b, conv: ir.Conv) -> int:
    weights, bias = prepack.prepack(conv)
    weights_vec = _floats(b, weights, PREPACKED_ALIGNMENT)
    bias_vec = _floats(b, bias, PREPACKED_ALIGNMENT)
    fbPackedConv.Start(b)
    fbPackedConv.AddPanelWidth(b, prepack.PANEL_WIDTH)
    fbPackedConv.AddWeights(b, weights_vec)
    fbPackedConv.AddBias(b, bias_vec)
    return fbPackedConv.End(b)


def _batch_norm(b, bn: ir.BatchNorm) -> int:
    gamma, beta = _floats(b, bn.gamma), _floats(b, bn.beta)
    mean, var = _floats(b, bn.moving_mean), _floats(b, bn.moving_variance)
    fbBatchNorm.Start(b)
    fbBatchNorm.AddGamma(b, gamma)
    fbBatchNorm.AddBeta(b, beta)
    fbBatchNorm.AddMovingMean(b, mean)
    fbBatchNorm.AddMovingVariance(b, var)
    fbBatchNorm.AddEpsilon(b, float(bn.epsilon))
    return fbBatchNorm.End(b)


def _conv(b, conv: ir.Conv, prepacked: bool = False) -> int:
    if conv.kind not in _KINDS:
        raise ValueError(f"{conv.name}: unknown conv kind {conv.kind!r}")
    if conv.activation not in _ACTIVATIONS:
        raise ValueError(f"{conv.name}: unknown activation {conv.activation!r}")
    expected_rank = 4 if conv.kind == "full" else 3
    if conv.kernel.ndim != expected_rank:
        raise ValueError(f"{conv.name}: {conv.kind} kernel must have rank {expected_rank}, "
                         f"found shape {conv.kernel.shape}")
    name = b.CreateString(conv.name)
    packed = bias = bn = None
    if prepacked:
        # `kernel` is required by the schema: empty here, the weights are in `packed`.
        kernel = _floats(b, [], PREPACKED_ALIGNMENT)
        packed = _packed(b, conv)
    else:
        kernel = _floats(b, conv.kernel)
        bias = _floats(b, conv.bias) if conv.bias is not None else None
        bn = _batch_norm(b, conv.batch_norm) if conv.batch_norm is not None else None
    fbConvLayer.Start(b)
    fbConvLayer.AddName(b, name)
    fbConvLayer.AddKind(b, _KINDS[conv.kind])
    fbConvLayer.AddKernelH(b, int(conv.kernel.shape[0]))
    fbConvLayer.AddKernelW(b, int(conv.kernel.shape[1]))
    fbConvLayer.AddStride(b, int(conv.stride))
    fbConvLayer.AddInChannels(b, conv.in_channels)
    fbConvLayer.AddOutChannels(b, conv.out_channels)
    fbConvLayer.AddKernel(b, kernel)
    if bias is not None:
        fbConvLayer.AddBias(b, bias)
    if bn is not None:
        fbConvLayer.AddBatchNorm(b, bn)
    fbConvLayer.AddActivation(b, _ACTIVATIONS[conv.activation])
    if packed is not None:
        fbConvLayer.AddPacked(b, packed)
    return fbConvLayer.End(b)


def _block(b, block: ir.Block, prepacked: bool) -> int:
    name = b.CreateString(block.name)
    expand = _conv(b, block.expand, prepacked) if block.expand is not None else None
    depthwise = _conv(b, block.depthwise, prepacked)
    project = _conv(b, block.project, prepacked)
    fbBlock.Start(b)
    fbBlock.AddName(b, name)
    fbBlock.AddExpansion(b, int(block.expansion))
    fbBlock.AddStride(b, int(block.stride))
    fbBlock.AddInChannels(b, int(block.in_channels))
    fbBlock.AddOutChannels(b, int(block.out_channels))
    fbBlock.AddResidual(b, bool(block.residual))
    if expand is not None:
        fbBlock.AddExpand(b, expand)
    fbBlock.AddDepthwise(b, depthwise)
    fbBlock.AddProject(b, project)
    return fbBlock.End(b)


def _classifier(b, c: ir.Classifier, align: int) -> int:
    weights = _floats(b, c.weights, align)
    bias = _floats(b, c.bias, align) if c.bias is not None else None
    fbClassifier.Start(b)
    fbClassifier.AddNumClasses(b, c.num_classes)
    fbClassifier.AddWeights(b, weights)
    if bias is not None:
        fbClassifier.AddBias(b, bias)
    fbClassifier.AddLabelOffset(b, int(c.label_offset))
    return fbClassifier.End(b)


def _dense(b, d: ir.Dense, align: int) -> int:
    if d.activation not in _DENSE_ACTIVATIONS:
        raise ValueError(f"dense layer {d.name}: unknown activation {d.activation!r}")
    name = b.CreateString(d.name)
    weights = _floats(b, d.weights, align)
    bias = _floats(b, d.bias, align) if d.bias is not None else None
    fbDenseLayer.Start(b)
    fbDenseLayer.AddName(b, name)
    fbDenseLayer.AddInFeatures(b, d.in_features)
    fbDenseLayer.AddOutFeatures(b, d.out_features)
    fbDenseLayer.AddWeights(b, weights)
    if bias is not None:
        fbDenseLayer.AddBias(b, bias)
    fbDenseLayer.AddActivation(b, _DENSE_ACTIVATIONS[d.activation])
    return fbDenseLayer.End(b)


def _offsets_vector(b, offsets) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _golden(b, g: ir.Golden, align: int) -> int:
    if g.input.ndim != 3 or g.input.shape[2] != 3:
        raise ValueError(f"golden {g.name!r}: input must be [H, W, 3], found {g.input.shape}")
    name = b.CreateString(g.name)
    inp = _floats(b, g.input, align)
    pool = b.CreateString(g.pool)
    out = _floats(b, g.output, align)
    ref = b.CreateString(g.reference)
    fbGolden.Start(b)
    fbGolden.AddName(b, name)
    fbGolden.AddHeight(b, int(g.input.shape[0]))
    fbGolden.AddWidth(b, int(g.input.shape[1]))
    fbGolden.AddInput(b, inp)
    fbGolden.AddPool(b, pool)
    fbGolden.AddOutput(b, out)
    fbGolden.AddReference(b, ref)
    fbGolden.AddMaxAbsTolerance(b, float(g.max_abs_tolerance))
    return fbGolden.End(b)


def _payload(net: ir.Network, prepacked: bool) -> bytes:
    align = PREPACKED_ALIGNMENT if prepacked else ALIGNMENT
    approx = sum(layer.kernel.size for layer in net.layers()) * 4 + (1 << 20)
    approx += sum(g.input.size * 4 for g in net.goldens)
    if net.classifier is not None:
        approx += net.classifier.weights.size * 4
    approx += sum(d.weights.size * 4 for d in net.dense_head)
    b = flatbuffers.Builder(approx)

    # Children first: a FlatBuffers table can only reference finished objects.
    architecture = b.CreateString(net.architecture)
    fbInputNorm.Start(b)
    fbInputNorm.AddScale(b, float(net.input_scale))
    fbInputNorm.AddOffset(b, float(net.input_offset))
    input_norm = fbInputNorm.End(b)
    stem = _conv(b, net.stem, prepacked)
    blocks = [_block(b, blk, prepacked) for blk in net.blocks]
    fbNetwork.StartBlocksVector(b, len(blocks))
    for off in reversed(blocks):
        b.PrependUOffsetTRelative(off)
    blocks_vec = b.EndVector()
    head = _conv(b, net.head, prepacked)
    feature_layer = b.CreateString(net.feature_layer)
    classifier = _classifier(b, net.classifier, align) if net.classifier is not None else None
    dense_vec = (_offsets_vector(b, [_dense(b, d, align) for d in net.dense_head])
                 if net.dense_head else None)
    labels_vec = _offsets_vector(b, [b.CreateString(s) for s in net.labels]) if net.labels else None
    prov_strings = [b.CreateString(s) for s in
                    (net.source, net.source_format, ir.EXPORTER_VERSION, net.notes)]
    fbProvenance.Start(b)
    fbProvenance.AddSource(b, prov_strings[0])
    fbProvenance.AddSourceFormat(b, prov_strings[1])
    fbProvenance.AddExporterVersion(b, prov_strings[2])
    fbProvenance.AddNotes(b, prov_strings[3])
    provenance = fbProvenance.End(b)
    goldens_vec = None
    if net.goldens:
        goldens = [_golden(b, g, align) for g in net.goldens]
        fbNetwork.StartGoldensVector(b, len(goldens))
        for off in reversed(goldens):
            b.PrependUOffsetTRelative(off)
        goldens_vec = b.EndVector()

    fbNetwork.Start(b)
    fbNetwork.AddArchitecture(b, architecture)
    fbNetwork.AddWidthMultiplier(b, float(net.width_multiplier))
    fbNetwork.AddResolution(b, int(net.resolution))
    fbNetwork.AddInputNormalization(b, input_norm)
    fbNetwork.AddStem(b, stem)
    fbNetwork.AddBlocks(b, blocks_vec)
    fbNetwork.AddHead(b, head)
    fbNetwork.AddFeatureLayer(b, feature_layer)
    fbNetwork.AddFeatureDim(b, int(net.feature_dim))
    if classifier is not None:
        fbNetwork.AddClassifier(b, classifier)
    if dense_vec is not None:
        fbNetwork.AddDenseHead(b, dense_vec)
    if labels_vec is not None:
        fbNetwork.AddLabels(b, labels_vec)
    fbNetwork.AddProvenance(b, provenance)
    if goldens_vec is not None:
        fbNetwork.AddGoldens(b, goldens_vec)
    b.Finish(fbNetwork.End(b))
    return bytes(b.Output())


def format_version(net: ir.Network, prepacked: bool = False) -> int:
    """The oldest format version that holds everything `net` needs."""
    if prepacked:
        return ir.FORMAT_VERSION_PREPACKED
    return ir.FORMAT_VERSION_WITH_HEAD if net.dense_head else ir.FORMAT_VERSION


def to_bytes(net: ir.Network, prepacked: bool = False) -> bytes:
    """The complete .featx file for `net` (validated first); `prepacked`: weights
    folded and packed for the runtime to use in place (format version 3)."""
    net.validate()
    payload = _payload(net, prepacked)
    b = flatbuffers.Builder(len(payload) + 256)
    b.StartVector(1, len(payload), PREPACKED_ALIGNMENT if prepacked else ALIGNMENT)
    b.head = b.head - len(payload)
    b.Bytes[b.head:b.head + len(payload)] = payload
    payload_vec = b.EndVector()
    fbModelFile.Start(b)
    fbModelFile.AddFormatVersion(b, format_version(net, prepacked))
    fbModelFile.AddPayloadCrc32c(b, crc32c(payload))
    fbModelFile.AddPayload(b, payload_vec)
    b.Finish(fbModelFile.End(b), file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())


def write_featx(net: ir.Network, path, prepacked: bool = False) -> None:
    """Write `net` to `path` atomically (a half-written model never appears under the name)."""
    data = to_bytes(net, prepacked)
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
