"""Synthetic MobileNetV2 networks with random weights, for tests at every width.

Same topology and channel rounding as slim/Keras MobileNetV2, raw (unfolded)
batch norm on every conv, so the runtime's BN folding is exercised too.
Weights are normal with variance gain / fan_in (He-like) and the raw BN
statistics are drawn independently of them (gamma ~ U(0.5, 1.5), beta and mean
~ N(0, 0.1), variance ~ U(0.5, 1.5), eps 0.001), which keeps activations O(1)
through all 17 blocks: neither does ReLU6 saturate everywhere nor does
everything die. Deterministic for a seed (numpy's PCG64 via default_rng).
"""

from __future__ import annotations

import numpy as np

from . import ir

SUPPORTED_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
EPSILON = 0.001

# Variance gains over 1/fan_in, tuned by measuring forward passes at every
# width and resolution. Random nets easily become chaotic (with gains of 4 a
# 1e-6 input perturbation grew 50x by the features, so float32 rounding did
# too, and goldens would need loose tolerances); these gains keep that growth
# about 3x, like the trained models, while ~50% of each ReLU6 output is 0 and
# ~1-2% is clipped at 6 (both ends exercised), and the pooled features have
# median ~0.3, max < 6 and ~5-13% exact zeros.
EXPAND_GAIN = 3.0     # stem and expand convs
DEPTHWISE_GAIN = 3.0
PROJECT_GAIN = 0.3    # linear bottleneck: small, so residual sums do not grow block by block
HEAD_GAIN = 2.0


def head_channels(alpha: float) -> int:
    """slim/Keras keep the last conv at 1280 for alpha <= 1 and widen it above."""
    return 1280 if alpha <= 1.0 else ir.make_divisible(1280 * alpha)


def _batch_norm(rng: np.random.Generator, channels: int) -> ir.BatchNorm:
    return ir.BatchNorm(
        gamma=rng.uniform(0.5, 1.5, channels).astype(np.float32),
        beta=rng.normal(0.0, 0.1, channels).astype(np.float32),
        moving_mean=rng.normal(0.0, 0.1, channels).astype(np.float32),
        moving_variance=rng.uniform(0.5, 1.5, channels).astype(np.float32),
        epsilon=EPSILON)


def _full(rng, name, kh, cin, cout, stride, activation, gain) -> ir.Conv:
    # He: var = gain / fan_in keeps the output's second moment near the input's.
    std = np.sqrt(gain / (kh * kh * cin))
    kernel = rng.normal(0.0, std, (kh, kh, cin, cout)).astype(np.float32)
    return ir.Conv(name=name, kind="full", kernel=kernel, stride=stride,
                   batch_norm=_batch_norm(rng, cout), activation=activation)


def _depthwise(rng, name, channels, stride) -> ir.Conv:
    std = np.sqrt(DEPTHWISE_GAIN / 9.0)
    kernel = rng.normal(0.0, std, (3, 3, channels)).astype(np.float32)
    return ir.Conv(name=name, kind="depthwise", kernel=kernel, stride=stride,
                   batch_norm=_batch_norm(rng, channels), activation="relu6")


def parse_dense_spec(text: str):
    """'128:relu,10:softmax' or 'embedding_layer=128:relu,...' -> [(name, units, activation)].

    Unnamed layers get Keras's default names: dense, dense_1, dense_2, ...
    """
    layers = []
    for i, item in enumerate(t for t in text.split(",") if t.strip()):
        name, _, rest = item.rpartition("=")
        units, _, activation = rest.partition(":")
        try:
            n = int(units)
        except ValueError:
            n = 0
        activation = activation or "linear"
        if n < 1 or activation not in ir.DENSE_ACTIVATIONS:
            raise ValueError(f"dense layer spec {item!r}: expected [NAME=]UNITS[:ACTIVATION] with "
                             f"UNITS >= 1 and ACTIVATION one of {', '.join(ir.DENSE_ACTIVATIONS)}")
        layers.append((name.strip() or ("dense" if i == 0 else f"dense_{i}"), n, activation))
    return layers


def random_dense_head(rng: np.random.Generator, features: int, spec) -> list:
    """Random Dense layers (He-scaled weights, small biases) for a parse_dense_spec list."""
    head, width = [], features
    for name, units, activation in spec:
        weights = rng.normal(0.0, np.sqrt(2.0 / width), (units, width)).astype(np.float32)
        bias = rng.normal(0.0, 0.1, units).astype(np.float32)
        head.append(ir.Dense(name=name, weights=weights, bias=bias, activation=activation))
        width = units
    return head


def random_network(alpha: float, resolution: int, seed: int, classes: int = 0,
                   dense: str = "") -> ir.Network:
    """A deterministic random MobileNetV2 for width multiplier `alpha`.

    `resolution` is only recorded (the network runs at any size); `classes` > 0
    adds a random classifier on the feature vector; `dense` (parse_dense_spec)
    adds a random Dense head instead, like a user's fine-tuned model.
    """
    if alpha <= 0:
        raise ValueError(f"width multiplier must be positive, got {alpha}")
    if resolution < 1:
        raise ValueError(f"resolution must be positive, got {resolution}")
    if classes < 0:
        raise ValueError(f"classes must be >= 0, got {classes}")
    rng = np.random.default_rng(seed)

    channels = ir.make_divisible(32 * alpha)
    stem = _full(rng, "Conv", 3, 3, channels, 2, "relu6", gain=EXPAND_GAIN)
    blocks = []
    for t, c, n, s in ir.MOBILENET_V2_BLOCKS:
        out = ir.make_divisible(c * alpha)
        for i in range(n):
            name = ir.block_name(len(blocks))
            stride = s if i == 0 else 1
            inner = channels * t
            expand = (_full(rng, f"{name}/expand", 1, channels, inner, 1, "relu6", gain=EXPAND_GAIN)
                      if t != 1 else None)
            depthwise = _depthwise(rng, f"{name}/depthwise", inner, stride)
            project = _full(rng, f"{name}/project", 1, inner, out, 1, "none", gain=PROJECT_GAIN)
            blocks.append(ir.Block(name=name, expansion=t, stride=stride, in_channels=channels,
                                   out_channels=out, expand=expand, depthwise=depthwise,
                                   project=project))
            channels = out
    head = _full(rng, "Conv_1", 1, channels, head_channels(alpha), 1, "relu6", gain=HEAD_GAIN)

    classifier = None
    if classes:
        features = head.out_channels
        classifier = ir.Classifier(
            weights=rng.normal(0.0, 1.0 / np.sqrt(features), (classes, features)).astype(np.float32),
            bias=rng.normal(0.0, 0.1, classes).astype(np.float32), label_offset=0)

    dense_head = random_dense_head(rng, head.out_channels, parse_dense_spec(dense)) if dense else []

    net = ir.Network(width_multiplier=float(alpha), resolution=int(resolution),
                     input_scale=2.0, input_offset=-1.0, stem=stem, blocks=blocks, head=head,
                     classifier=classifier, dense_head=dense_head,
                     source=f"random:alpha={float(alpha)},resolution={resolution},seed={seed},"
                            f"classes={classes}" + (f",dense={dense}" if dense else ""),
                     source_format="random",
                     notes="synthetic weights for tests; input x*2-1 (TF Hub convention)")
    net.validate()
    return net
