"""The featx command line from the Python tests, and an independent numpy head.

The binary is FEATX_BIN (ctest sets it), else build/featx in the repo.
`head_reference` evaluates Dense layers in float64 numpy from weights the
test read itself, so a head test never compares featx with itself.
"""

import os
import subprocess
import tempfile

import numpy as np

import support


def binary() -> str:
    path = os.environ.get("FEATX_BIN", os.path.join(support.REPO_ROOT, "build", "featx"))
    if not os.path.isfile(path):
        support._loud_skip(f"featx binary not found at {path} (build it, or set FEATX_BIN)")
    return path


def run(*args, check=True):
    proc = subprocess.run([binary(), *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"featx {' '.join(map(str, args))} failed: {proc.stderr.strip()}")
    return proc


def extract(model, inputs, *flags) -> np.ndarray:
    """`featx extract -m model [flags] inputs... -o x.npy` -> the array."""
    with tempfile.TemporaryDirectory(prefix="featx_cli_") as tmp:
        out = os.path.join(tmp, "out.npy")
        run("extract", "-m", model, *flags, "-o", out, *inputs)
        return np.load(out)


def classify(model, images, *flags):
    """`featx classify` -> [(name, [(rank, probability, class, label), ...]), ...]."""
    results = []
    for line in run("classify", "-m", model, *flags, *images).stdout.splitlines():
        if not line.startswith("  "):
            results.append((line, []))
            continue
        rank, prob, cls, label = line[2:].split("\t")
        results[-1][1].append((int(rank), float(prob), int(cls), label))
    return results


def head_reference(features: np.ndarray, layers, upto: int = -1, activate_last: bool = True):
    """Dense layers [(weights [out, in], bias or None, activation), ...] on (N, F) features,
    in float64, up to index `upto` (inclusive; -1 = all)."""
    x = np.asarray(features, dtype=np.float64)
    last = len(layers) - 1 if upto < 0 else upto
    for i, (w, b, activation) in enumerate(layers[:last + 1]):
        x = x @ np.asarray(w, np.float64).T + (0.0 if b is None else np.asarray(b, np.float64))
        if i == last and not activate_last:
            break
        if activation == "relu":
            x = np.maximum(x, 0.0)
        elif activation == "relu6":
            x = np.clip(x, 0.0, 6.0)
        elif activation == "softmax":
            e = np.exp(x - x.max(axis=1, keepdims=True))
            x = e / e.sum(axis=1, keepdims=True)
        elif activation != "linear":
            raise ValueError(f"unknown activation {activation}")
    return x


def rel_l2(actual, expected) -> float:
    """|actual - expected| / |expected| (L2, in float64)."""
    expected = np.asarray(expected, np.float64)
    return float(np.linalg.norm(np.asarray(actual, np.float64) - expected) / np.linalg.norm(expected))


def assert_close(test, actual, expected, max_abs, what) -> float:
    """Max |actual - expected| <= max_abs; returns the error."""
    err = float(np.max(np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64))))
    test.assertLessEqual(err, max_abs, f"{what}: max |error| {err:.3g} > {max_abs}")
    return err
