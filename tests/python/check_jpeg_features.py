"""The whole image path, feature by feature: a JPEG through `featx extract`
against the TF pipeline emulated without featx.

Reference per preset (images from the shared folder, TF2 MobileNetV2
exported from the shared .tflite; ONNX Runtime on the exporter's ONNX graph
of the same weights):
  tf            djpeg -dct fast -> x * float32(1/255) -> numpy ResizeBilinear
  tf-antialias  djpeg -dct fast -> ... -> numpy ScaleAndTranslate (triangle)
  keras         PIL load_img(target_size) (NEAREST) -> x / 255
  fast          djpeg -dct fast -scale 1/d -> ... -> numpy ResizeBilinear
Bounds as for the goldens: max |error| <= 5e-5 and relative L2 <= 1e-5.
Run through ctest (image_jpeg_features).
"""

import os
import subprocess
import sys
import unittest

import numpy as np

import image_refs as R
import support

PHOTOS = ("kite_and_cold.jpg", "parrot.jpg", "pets.jpg")
MAX_ABS, REL_L2 = 5e-5, 1e-5


def setUpModule():
    R.require_images()
    R.require_tools("djpeg")
    support.require_shared()
    support.require_ort()
    if not R.CLI or not os.path.isfile(R.CLI):
        support._loud_skip("FEATX_CLI is not set to build/featx (run through ctest)")


class Models:
    _onnx = None

    @classmethod
    def featx(cls):
        path = os.path.join(R.MODELS, "tflite_tf2_mobilenet_v2_1.0_224_ptq.featx")
        if not os.path.isfile(path):
            support._loud_skip(f"{path} not found (built by the featx_test_models target)")
        return path

    @classmethod
    def onnx(cls):
        if cls._onnx is None:
            out = os.path.join(R.work_dir("jpeg_features"), "tf2.onnx")
            subprocess.run([sys.executable, os.path.join(support.TOOLS, "export_weights.py"), "--tflite",
                            support.TF2_MODEL, "--onnx", out], check=True, capture_output=True)
            cls._onnx = out
        return cls._onnx


def featx_extract(preset: str, paths) -> np.ndarray:
    out = os.path.join(R.work_dir("jpeg_features_" + preset), "f.npy")
    subprocess.run([R.CLI, "extract", "-m", Models.featx(), "--preprocess", preset, "-o", out, *paths], check=True,
                   capture_output=True)
    return np.load(out)


def reference_input(preset: str, path: str) -> np.ndarray:
    if preset == "keras":
        return R.keras_load_img(path, 224, 224)
    if preset == "fast":
        h, w = R.djpeg(path, "fast").shape[:2]
        d = next((d for d in (8, 4, 2) if -(-h // d) >= 448 and -(-w // d) >= 448), 1)
        pixels = R.tf_unit(R.djpeg(path, "fast", *(["-scale", f"1/{d}"] if d > 1 else [])))
        return R.tf_resize_bilinear(pixels, 224, 224)
    pixels = R.tf_unit(R.djpeg(path, "fast"))
    resize = R.tf_resize_antialias if preset == "tf-antialias" else R.tf_resize_bilinear
    return resize(pixels, 224, 224)


class FeaturesTest(unittest.TestCase):
    def check(self, preset):
        from featx_export import ort_runner
        paths = [os.path.join(support.IMAGES, p) for p in PHOTOS]
        got = featx_extract(preset, paths)
        ref = ort_runner.run(Models.onnx(), np.stack([reference_input(preset, p) for p in paths]))
        self.assertEqual(got.shape, ref.shape)
        for name, g, r in zip(PHOTOS, got, ref):
            err = float(np.abs(g.astype(np.float64) - r).max())
            rel = float(np.linalg.norm(g.astype(np.float64) - r) / np.linalg.norm(r))
            print(f"\n{preset:13s} {name:18s} max |err| {err:.2e}  rel L2 {rel:.2e}", end="")
            self.assertLessEqual(err, MAX_ABS, f"{preset} {name}")
            self.assertLessEqual(rel, REL_L2, f"{preset} {name}")

    def test_tf_default(self):
        self.check("tf")

    def test_tf_antialias(self):
        self.check("tf-antialias")

    def test_keras(self):
        self.check("keras")

    def test_fast(self):
        self.check("fast")


if __name__ == "__main__":
    unittest.main()
