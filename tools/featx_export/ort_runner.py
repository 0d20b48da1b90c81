"""Run an ONNX graph with ONNX Runtime through node (tools/ort/run_onnx.mjs).

ONNX Runtime comes from npm (onnxruntime-node), not PyPI, so Python talks
to it through a small node script and .npy files. Where it lives:
FEATX_ORT_DIR (a node_modules directory holding onnxruntime-node), default
tools/ort/node_modules; node from FEATX_NODE or PATH.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile

import numpy as np

_TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(_TOOLS, "ort", "run_onnx.mjs")


class OrtUnavailable(RuntimeError):
    """node or onnxruntime-node is missing; the message says how to install them."""


def ort_dir() -> str:
    return os.environ.get("FEATX_ORT_DIR", os.path.join(_TOOLS, "ort", "node_modules"))


def _node() -> str:
    node = os.environ.get("FEATX_NODE") or shutil.which("node")
    if not node:
        raise OrtUnavailable("node not found (install Node.js or set FEATX_NODE)")
    return node


def _env():
    modules = ort_dir()
    if not os.path.isdir(os.path.join(modules, "onnxruntime-node")):
        raise OrtUnavailable(f"onnxruntime-node not found in {modules}: run "
                             f"'npm install --ignore-scripts' in tools/ort or set FEATX_ORT_DIR")
    env = dict(os.environ)
    env["NODE_PATH"] = modules  # lets run_onnx.mjs's require() find it outside tools/ort
    return env


def available() -> bool:
    try:
        _node()
        _env()
        return True
    except OrtUnavailable:
        return False


@functools.lru_cache(maxsize=1)
def version() -> str:
    """e.g. "onnxruntime-node 1.30.0"."""
    proc = subprocess.run([_node(), SCRIPT, "--print-version"], env=_env(),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise OrtUnavailable(proc.stderr.strip() or "run_onnx.mjs failed")
    return proc.stdout.strip()


def run(model_path, inputs: np.ndarray, output_name: str = "features") -> np.ndarray:
    """Run `model_path` on float32 NHWC `inputs`; returns the named output."""
    with tempfile.TemporaryDirectory(prefix="featx_ort_") as tmp:
        in_path = os.path.join(tmp, "input.npy")
        out_path = os.path.join(tmp, "output.npy")
        np.save(in_path, np.ascontiguousarray(inputs, dtype="<f4"))
        proc = subprocess.run([_node(), SCRIPT, os.fspath(model_path), in_path, out_path,
                               "--output-name", output_name],
                              env=_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip()
                               else f"run_onnx.mjs exited with {proc.returncode}")
        return np.load(out_path)
