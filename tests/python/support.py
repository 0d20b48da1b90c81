"""Shared setup for the exporter tests: import path, shared folder, loud skips."""

import os
import sys
import unittest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(REPO_ROOT, "tools")
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

from featx_export import model_spec, ort_runner  # noqa: E402

SHARED = model_spec.shared_dir()
MODELS = os.path.join(SHARED, "models")
IMAGES = os.path.join(SHARED, "images")
TF2_MODEL = os.path.join(MODELS, "tf2_mobilenet_v2_1.0_224_ptq.tflite")
SLIM_MODEL = os.path.join(MODELS, "mobilenet_v2_1.0_224_quant.tflite")


def _loud_skip(reason: str):
    # unittest only counts skips; say it on stderr too so nobody mistakes it for a pass.
    sys.stderr.write(f"\n*** SKIPPED: {reason}\n")
    raise unittest.SkipTest(reason)


def assert_contains(test, haystack, *needles):
    """Every needle in `haystack`: substrings of a text, or items of a list."""
    for needle in needles:
        test.assertIn(needle, haystack)


def require_shared():
    if not os.path.isfile(TF2_MODEL) or not os.path.isfile(SLIM_MODEL):
        _loud_skip(f"shared folder with the .tflite models not found at {SHARED} "
                   f"(set FEATX_SHARED_DIR)")


def require_ort():
    if not ort_runner.available():
        _loud_skip(f"ONNX Runtime for node not found in {ort_runner.ort_dir()} "
                   f"(npm install --ignore-scripts in tools/ort, or set FEATX_ORT_DIR)")
