"""ir.Network -> .featx bytes (schema include/featx/schema/featx.fbs).

Two FlatBuffers: the Network is built first into its own buffer (the payload),
then wrapped in a ModelFile that carries format_version and the payload's
CRC-32C, finished with identifier "FTX1".

Alignment: float vectors inside the payload start on 16-byte boundaries and
the payload vector itself starts on a 16-byte boundary of the file, so a
mapped file (page aligned) gives the runtime aligned float arrays to read in
place.
"""

from __future__ import annotations

import os
from typing import Optional

import flatbuffers
import numpy as np

from . import ir
from .crc32c import crc32c

from featx.fb import (BatchNorm as fbBatchNorm, Block as fbBlock, Classifier as fbClassifier,
                      ConvLayer as fbConvLayer, DenseLayer as fbDenseLayer,
                      GoldenSample as fbGolden,
                      InputNormalization as fbInputNorm, ModelFile as fbModelFile,
                      Network as fbNetwork, Provenance as fbProvenance)

ALIGNMENT = 16
FILE_IDENTIFIER = b"FTX1"

_ACTIVATIONS = {"none": 0, "relu6": 1, "relu": 2}
_KINDS = {"full": 0, "depthwise": 1}
_DENSE_ACTIVATIONS = {"linear": 0, "relu": 1, "relu6": 2, "softmax": 3}


def _floats(b: flatbuffers.Builder, values) -> int:
    """A [float] vector whose first element is ALIGNMENT-aligned."""
    a = np.ascontiguousarray(np.asarray(values, dtype="<f4").ravel())
    b.StartVector(4, a.size, ALIGNMENT)
    b.head = b.head - a.nbytes
    b.Bytes[b.head:b.head + a.nbytes] = a.tobytes()
    return b.EndVector()


def _string(b: flatbuffers.Builder, s: Optional[str]) -> Optional[int]:
    return None if s is None else b.CreateString(s)


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


def _conv(b, conv: ir.Conv) -> int:
    if conv.kind not in _KINDS:
        raise ValueError(f"{conv.name}: unknown conv kind {conv.kind!r}")
    if conv.activation not in _ACTIVATIONS:
        raise ValueError(f"{conv.name}: unknown activation {conv.activation!r}")
    expected_rank = 4 if conv.kind == "full" else 3
    if conv.kernel.ndim != expected_rank:
        raise ValueError(f"{conv.name}: {conv.kind} kernel must have rank {expected_rank}, "
                         f"found shape {conv.kernel.shape}")
    name = b.CreateString(conv.name)
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
    return fbConvLayer.End(b)


def _block(b, block: ir.Block) -> int:
    name = b.CreateString(block.name)
    expand = _conv(b, block.expand) if block.expand is not None else None
    depthwise = _conv(b, block.depthwise)
    project = _conv(b, block.project)
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


def _classifier(b, c: ir.Classifier) -> int:
    weights = _floats(b, c.weights)
    bias = _floats(b, c.bias) if c.bias is not None else None
    fbClassifier.Start(b)
    fbClassifier.AddNumClasses(b, c.num_classes)
    fbClassifier.AddWeights(b, weights)
    if bias is not None:
        fbClassifier.AddBias(b, bias)
    fbClassifier.AddLabelOffset(b, int(c.label_offset))
    return fbClassifier.End(b)


def _dense(b, d: ir.Dense) -> int:
    if d.activation not in _DENSE_ACTIVATIONS:
        raise ValueError(f"dense layer {d.name}: unknown activation {d.activation!r}")
    name = b.CreateString(d.name)
    weights = _floats(b, d.weights)
    bias = _floats(b, d.bias) if d.bias is not None else None
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


def _golden(b, g: ir.Golden) -> int:
    if g.input.ndim != 3 or g.input.shape[2] != 3:
        raise ValueError(f"golden {g.name!r}: input must be [H, W, 3], found {g.input.shape}")
    name = b.CreateString(g.name)
    inp = _floats(b, g.input)
    pool = b.CreateString(g.pool)
    out = _floats(b, g.output)
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


def _payload(net: ir.Network) -> bytes:
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
    stem = _conv(b, net.stem)
    blocks = [_block(b, blk) for blk in net.blocks]
    fbNetwork.StartBlocksVector(b, len(blocks))
    for off in reversed(blocks):
        b.PrependUOffsetTRelative(off)
    blocks_vec = b.EndVector()
    head = _conv(b, net.head)
    feature_layer = b.CreateString(net.feature_layer)
    classifier = _classifier(b, net.classifier) if net.classifier is not None else None
    dense_vec = _offsets_vector(b, [_dense(b, d) for d in net.dense_head]) if net.dense_head else None
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
        goldens = [_golden(b, g) for g in net.goldens]
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


def to_bytes(net: ir.Network) -> bytes:
    """The complete .featx file for `net` (validated first)."""
    net.validate()
    payload = _payload(net)
    b = flatbuffers.Builder(len(payload) + 256)
    b.StartVector(1, len(payload), ALIGNMENT)
    b.head = b.head - len(payload)
    b.Bytes[b.head:b.head + len(payload)] = payload
    payload_vec = b.EndVector()
    fbModelFile.Start(b)
    fbModelFile.AddFormatVersion(b, ir.FORMAT_VERSION_WITH_HEAD if net.dense_head else ir.FORMAT_VERSION)
    fbModelFile.AddPayloadCrc32c(b, crc32c(payload))
    fbModelFile.AddPayload(b, payload_vec)
    b.Finish(fbModelFile.End(b), file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())


def write_featx(net: ir.Network, path) -> None:
    """Write `net` to `path` atomically (a half-written model never appears under the name)."""
    data = to_bytes(net)
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
