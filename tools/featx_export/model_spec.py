"""Model specs of the goldens manifest: parse, build the network, derive the file id.

A spec names a model reproducibly:
  tflite:<file name in shared/models>              e.g. tflite:mobilenet_v2_1.0_224_quant.tflite
  random:alpha=<a>,resolution=<r>,seed=<s>,classes=<n>

model_id(spec) is the deterministic file stem used by make_test_models.py:
  tflite:<name>.tflite            -> tflite_<name>
  random:alpha=a,resolution=r,... -> random_a<a>_r<r>_s<s>_c<n>   (a as Python prints a float: 0.35, 1.0)
"""

from __future__ import annotations

import os
from typing import Dict

from . import ir

_TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_ROOT = os.path.dirname(_TOOLS)


def shared_dir() -> str:
    """FEATX_SHARED_DIR, default ../shared beside the repo."""
    return os.environ.get("FEATX_SHARED_DIR", os.path.join(os.path.dirname(REPO_ROOT), "shared"))


def random_spec(alpha: float, resolution: int, seed: int, classes: int = 0) -> str:
    return f"random:alpha={float(alpha)},resolution={int(resolution)},seed={int(seed)},classes={int(classes)}"


def parse(spec: str):
    """-> ("tflite", {"file": name}) or ("random", {alpha, resolution, seed, classes})."""
    kind, _, rest = spec.partition(":")
    if kind == "tflite" and rest:
        return kind, {"file": rest}
    if kind == "random":
        fields: Dict[str, str] = {}
        for item in rest.split(","):
            key, _, value = item.partition("=")
            fields[key.strip()] = value.strip()
        try:
            return kind, {"alpha": float(fields["alpha"]), "resolution": int(fields["resolution"]),
                          "seed": int(fields["seed"]), "classes": int(fields.get("classes", 0))}
        except (KeyError, ValueError):
            raise ValueError(f"bad random model spec {spec!r} (want "
                             f"random:alpha=A,resolution=R,seed=S,classes=N)") from None
    raise ValueError(f"unknown model spec {spec!r} (want tflite:FILE or random:...)")


def model_id(spec: str) -> str:
    kind, args = parse(spec)
    if kind == "tflite":
        stem = args["file"][:-len(".tflite")] if args["file"].endswith(".tflite") else args["file"]
        return f"tflite_{stem}"
    return f"random_a{args['alpha']}_r{args['resolution']}_s{args['seed']}_c{args['classes']}"


def build(spec: str) -> ir.Network:
    kind, args = parse(spec)
    if kind == "tflite":
        from .tflite_reader import read_tflite
        path = os.path.join(shared_dir(), "models", args["file"])
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: not found (set FEATX_SHARED_DIR to the shared folder)")
        return read_tflite(path)
    from .random_model import random_network
    return random_network(args["alpha"], args["resolution"], args["seed"], args["classes"])
