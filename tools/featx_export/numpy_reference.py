"""A float64 numpy forward pass of an ir.Network: a second opinion, not the reference.

Written straight from the TensorFlow semantics (NHWC, SAME padding with the
odd pixel at the bottom/right, raw batch norm, ReLU6, mean pool) and sharing
no code with the ONNX export, so ORT agreeing with it to ~1e-6 says the ONNX
graph and the readers are right.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from . import ir


def same_padding(size: int, kernel: int, stride: int):
    """TF SAME: (pad_before, pad_after, out_size)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


def _pad_and_windows(x: np.ndarray, k: int, stride: int):
    """Yield (i, j, view) where view[n, oy, ox, c] = padded x at (oy*s+i, ox*s+j)."""
    n, h, w, c = x.shape
    top, bottom, oh = same_padding(h, k, stride)
    left, right, ow = same_padding(w, k, stride)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    for i in range(k):
        for j in range(k):
            yield i, j, xp[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride, :]


def conv(x: np.ndarray, layer: ir.Conv) -> np.ndarray:
    """One conv layer including bias, batch norm and activation, in float64."""
    kernel = layer.kernel.astype(np.float64)
    k = kernel.shape[0]
    y = None
    for i, j, window in _pad_and_windows(x, k, layer.stride):
        if layer.kind == "full":
            term = window @ kernel[i, j]
        else:
            term = window * kernel[i, j]
        y = term if y is None else y + term
    if layer.bias is not None:
        y = y + layer.bias.astype(np.float64)
    bn = layer.batch_norm
    if bn is not None:
        inv = bn.gamma.astype(np.float64) / np.sqrt(bn.moving_variance.astype(np.float64) + bn.epsilon)
        y = (y - bn.moving_mean.astype(np.float64)) * inv + bn.beta.astype(np.float64)
    if layer.activation == "relu6":
        y = np.clip(y, 0.0, 6.0)
    elif layer.activation == "relu":
        y = np.maximum(y, 0.0)
    return y


def forward(net: ir.Network, images: np.ndarray, keep: Optional[set] = None) -> Dict[str, np.ndarray]:
    """Run `images` ([N, H, W, 3] or [H, W, 3], RGB in [0, 1]).

    Returns "features" [N, D], "logits" [N, classes] when there is a
    classifier, and the NHWC output of every layer or block named in `keep`.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[3] != 3:
        raise ValueError(f"expected [N, H, W, 3] input, found {x.shape}")
    keep = keep or set()
    out: Dict[str, np.ndarray] = {}

    def run(layer, value):
        value = conv(value, layer)
        if layer.name in keep:
            out[layer.name] = value
        return value

    x = x * net.input_scale + net.input_offset
    x = run(net.stem, x)
    for block in net.blocks:
        y = run(block.expand, x) if block.expand is not None else x
        y = run(block.depthwise, y)
        y = run(block.project, y)
        x = x + y if block.residual else y
        if block.name in keep:
            out[block.name] = x
    x = run(net.head, x)
    features = x.mean(axis=(1, 2))
    out["features"] = features
    if net.classifier is not None:
        c = net.classifier
        logits = features @ c.weights.astype(np.float64).T
        if c.bias is not None:
            logits = logits + c.bias.astype(np.float64)
        out["logits"] = logits
    return out
