"""Batch-norm folding and panel packing, done offline for prepacked .featx files.

The runtime (include/featx/model.hpp, Model::fold) folds a raw file at load:
  scale = gamma / sqrt(var + eps),  shift = beta + (bias - mean) * scale
  w' = float(w * scale),            b' = float(shift)
in double, rounded once to float; without batch norm scale = 1 and shift is
the conv bias (or 0). This module computes the same doubles with numpy (each
operation IEEE-rounded, no fused multiply-add) so that a prepacked file holds
bit for bit the weights the runtime would have made of the raw file.

Full convs are then packed as kernels/packed_weights.hpp lays them out: the
[kh*kw*in][out] matrix cut into panels of PANEL_WIDTH output columns, each
panel K-major, the last zero padded. Depthwise kernels stay [kh][kw][C].
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from . import ir

# kernels/packed_weights.hpp kPanelWidth: one AVX-512 vector, two AVX2, four
# NEON; the same panels serve every ISA.
PANEL_WIDTH = 16


def fold(conv: ir.Conv) -> Tuple[np.ndarray, np.ndarray]:
    """(folded kernel in the conv's own layout, folded bias), float32."""
    # Start from the float32 values the file would hold, as the runtime does.
    kernel = np.asarray(conv.kernel, dtype=np.float32).astype(np.float64)
    cout = conv.out_channels
    scale = np.ones(cout, dtype=np.float64)
    shift = (np.asarray(conv.bias, dtype=np.float32).astype(np.float64) if conv.bias is not None
             else np.zeros(cout, dtype=np.float64))
    bn = conv.batch_norm
    if bn is not None:
        f64 = lambda a: np.asarray(a, dtype=np.float32).astype(np.float64)  # noqa: E731
        eps = np.float64(np.float32(bn.epsilon))  # the file stores epsilon as a float
        scale = f64(bn.gamma) / np.sqrt(f64(bn.moving_variance) + eps)
        shift = f64(bn.beta) + (shift - f64(bn.moving_mean)) * scale
    # The output channel is the last axis of both HWIO and HWC.
    weights = (kernel * scale).astype(np.float32)
    bias = shift.astype(np.float32)
    if not (np.all(np.isfinite(weights)) and np.all(np.isfinite(bias))):
        raise ValueError(f"{conv.name}: non-finite weight after batch-norm folding")
    return weights, bias


def pack_panels(matrix: np.ndarray) -> np.ndarray:
    """A [rows][cols] matrix in PANEL_WIDTH-column K-major panels, flat."""
    rows, cols = matrix.shape
    panels = -(-cols // PANEL_WIDTH)
    padded = np.zeros((rows, panels * PANEL_WIDTH), dtype=np.float32)
    padded[:, :cols] = matrix
    return np.ascontiguousarray(padded.reshape(rows, panels, PANEL_WIDTH).transpose(1, 0, 2)).ravel()


def unpack_panels(packed: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The [rows][cols] matrix of pack_panels(); ValueError when the size does not fit."""
    panels = -(-cols // PANEL_WIDTH)
    if packed.size != rows * panels * PANEL_WIDTH:
        raise ValueError(f"{packed.size} packed values, a {rows} x {cols} matrix in "
                         f"{PANEL_WIDTH}-column panels needs {rows * panels * PANEL_WIDTH}")
    return packed.reshape(panels, rows, PANEL_WIDTH).transpose(1, 0, 2).reshape(rows, -1)[:, :cols]


def prepack(conv: ir.Conv) -> Tuple[np.ndarray, np.ndarray]:
    """(weights as the runtime runs them, folded bias): what a prepacked file stores."""
    weights, bias = fold(conv)
    if conv.kind == "depthwise":
        return weights.ravel(), bias
    return pack_panels(weights.reshape(-1, conv.out_channels)), bias
