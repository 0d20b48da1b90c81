"""The ONNX graph in ONNX Runtime against the float64 numpy reference (independent code)."""

import os
import tempfile
import unittest

import numpy as np
import onnx

import support
from featx_cli import rel_l2
from featx_export import numpy_reference, onnx_export, ort_runner
from featx_export.random_model import random_network


class SamePadsTest(unittest.TestCase):
    def test_tf_same_padding(self):
        # (size, kernel, stride) -> (before, after, out), TF's rule: extra at the bottom/right.
        self.assertEqual(onnx_export.same_pads(224, 3, 2), (0, 1, 112))
        self.assertEqual(onnx_export.same_pads(225, 3, 2), (1, 1, 113))
        self.assertEqual(onnx_export.same_pads(7, 3, 1), (1, 1, 7))
        self.assertEqual(onnx_export.same_pads(1, 3, 2), (1, 1, 1))
        self.assertEqual(onnx_export.same_pads(6, 1, 1), (0, 0, 6))
        self.assertEqual(numpy_reference.same_padding(161, 3, 2), (1, 1, 81))

    def test_graph_shape(self):
        net = random_network(0.35, 96, seed=1, classes=5)
        model = onnx_export.build_model(net, 50, 31, output_layer="expanded_conv_3/expand")
        outputs = [o.name for o in model.graph.output]
        self.assertEqual(outputs, ["features", "logits", "layer"])
        self.assertEqual(model.graph.input[0].name, "input")
        ops = {n.op_type for n in model.graph.node}
        self.assertTrue({"Conv", "BatchNormalization", "Clip", "Add", "ReduceMean", "Gemm"} <= ops)
        onnx.checker.check_model(model)
        with self.assertRaisesRegex(ValueError, "no layer or block named"):
            onnx_export.build_model(net, 50, 31, output_layer="expanded_conv_99")


class OrtAgreementTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        support.require_ort()

    def test_random_models_odd_sizes(self):
        rng = np.random.default_rng(7)
        for alpha, (h, w), classes in ((0.35, (57, 43), 4), (1.4, (33, 70), 0)):
            with self.subTest(alpha=alpha):
                net = random_network(alpha, 224, seed=2, classes=classes)
                x = rng.uniform(0, 1, (2, h, w, 3)).astype(np.float32)
                ref = numpy_reference.forward(net, x, keep={"expanded_conv_6"})
                with tempfile.TemporaryDirectory() as tmp:
                    path = os.path.join(tmp, "m.onnx")
                    onnx_export.to_onnx(net, h, w, path, output_layer="expanded_conv_6")
                    features = ort_runner.run(path, x, "features")
                    layer = ort_runner.run(path, x, "layer")
                    self.assertLess(rel_l2(features, ref["features"]), 2e-5)
                    self.assertEqual(layer.shape, ref["expanded_conv_6"].shape)
                    self.assertLess(rel_l2(layer, ref["expanded_conv_6"]), 2e-5)
                    if classes:
                        logits = ort_runner.run(path, x, "logits")
                        self.assertLess(rel_l2(logits, ref["logits"]), 2e-5)

    def test_tflite_model(self):
        support.require_shared()
        from featx_export.tflite_reader import read_tflite
        net = read_tflite(support.TF2_MODEL)
        x = np.random.default_rng(3).uniform(0, 1, (1, 97, 130, 3)).astype(np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.onnx")
            onnx_export.to_onnx(net, 97, 130, path, batch=1)
            features = ort_runner.run(path, x)
        self.assertLess(rel_l2(features, numpy_reference.forward(net, x)["features"]), 1e-5)

    def test_runner_errors_are_one_line(self):
        with tempfile.TemporaryDirectory() as tmp:
            bad = os.path.join(tmp, "bad.onnx")
            with open(bad, "wb") as f:
                f.write(b"garbage")
            with self.assertRaises(RuntimeError) as ctx:
                ort_runner.run(bad, np.zeros((1, 8, 8, 3), np.float32))
            self.assertNotIn("\n", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
