"""The featx command line from the Python tests, and an independent numpy head.

The binary is FEATX_BIN (ctest sets it), else build/featx in the repo; the
TF2 MobileNetV2 test model is FEATX_TEST_MODELS_DIR's (ctest sets it), else
build/test_models, else exported here from the shared .tflite.
`head_reference` evaluates Dense layers in float64 numpy from weights the
test read itself, so a head test never compares featx with itself.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np

import support


def binary() -> str:
    path = os.environ.get("FEATX_BIN", os.path.join(support.REPO_ROOT, "build", "featx"))
    if not os.path.isfile(path):
        support._loud_skip(f"featx binary not found at {path} (build it, or set FEATX_BIN)")
    return path


def run(*args, check=True, env=None, cwd=None, timeout=None):
    """`featx args...` -> the CompletedProcess (text; undecodable bytes replaced); with
    `check`, a non-zero exit fails the test. `cwd`, `timeout`: as subprocess.run's."""
    proc = subprocess.run([binary(), *map(str, args)], capture_output=True, text=True, errors="replace",
                          env=env, cwd=cwd, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"featx {' '.join(map(str, args))} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


TF2_FEATX = "tflite_tf2_mobilenet_v2_1.0_224_ptq.featx"  # the featx_test_models target's export of support.TF2_MODEL


def tf2_model(work_dir) -> str:
    """The TF2 MobileNetV2 as a .featx: the featx_test_models target's export
    (FEATX_TEST_MODELS_DIR, else build/test_models), else exported from the
    shared .tflite into `work_dir` (skips loudly without the shared folder)."""
    models = os.environ.get("FEATX_TEST_MODELS_DIR") or os.path.join(support.REPO_ROOT, "build", "test_models")
    path = os.path.join(models, TF2_FEATX)
    if os.path.isfile(path):
        return path
    support.require_shared()
    path = os.path.join(work_dir, TF2_FEATX)
    subprocess.run([sys.executable, os.path.join(support.TOOLS, "export_weights.py"), "--tflite",
                    support.TF2_MODEL, "-o", path], check=True, capture_output=True)
    return path


def parse_ranked(stdout):
    """The lines classify and search print -> [(name, [(rank, value, index, label), ...]), ...]:
    a name on a line, then per rank two spaces, rank, TAB, probability or score, TAB,
    class or row index, TAB, its label or name."""
    results = []
    for line in stdout.splitlines():
        if not line.startswith("  "):
            results.append((line, []))
            continue
        rank, value, index, label = line[2:].split("\t")
        results[-1][1].append((int(rank), float(value), int(index), label))
    return results


def assert_one_line_error(test, proc, code=None, prefix="featx: error: ") -> str:
    """The CLI contract for bad input: a failing exit (`code` if given), one
    stderr line starting with `prefix`; returns that line."""
    if code is None:
        test.assertNotEqual(proc.returncode, 0, proc.stderr)
    else:
        test.assertEqual(proc.returncode, code, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    test.assertEqual(len(lines), 1, proc.stderr)
    test.assertTrue(lines[0].startswith(prefix), lines[0])
    return lines[0]


def extract(model, inputs, *flags) -> np.ndarray:
    """`featx extract -m model [flags] inputs... -o x.npy` -> the array."""
    with tempfile.TemporaryDirectory(prefix="featx_cli_") as tmp:
        out = os.path.join(tmp, "out.npy")
        run("extract", "-m", model, *flags, "-o", out, *inputs)
        return np.load(out)


def classify(model, images, *flags):
    """`featx classify` -> [(name, [(rank, probability, class, label), ...]), ...]."""
    return parse_ranked(run("classify", "-m", model, *flags, *images).stdout)


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
