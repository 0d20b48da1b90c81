"""The runtime's Dense head against ONNX Runtime features and a numpy head.

A random MobileNetV2 with a user-style head (Dense relu embedding, Dense
softmax without bias) is exported; ONNX Runtime computes its features from
the exporter's ONNX graph, numpy evaluates the head on them, and featx's
`extract --layer <dense>` and `classify` must agree. Keras layer names must
give the same bits as the slim names they alias.
"""

import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import featx_cli
import support
from featx_export import onnx_export, ort_runner, writer
from featx_export.random_model import random_network


class DenseHeadRuntimeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        support.require_ort()
        featx_cli.binary()
        cls.tmp = tempfile.TemporaryDirectory(prefix="featx_head_")
        net = random_network(0.35, 96, seed=11, dense="embedding_layer=32:relu,dense_1=5:softmax")
        net.dense_head[1].bias = None  # as Teachable Machine's last layer
        net.labels = ["a", "b", "c", "d", "e"]
        cls.net = net
        cls.model = os.path.join(cls.tmp.name, "head.featx")
        writer.write_featx(net, cls.model)
        onnx = os.path.join(cls.tmp.name, "head.onnx")
        onnx_export.to_onnx(net, 96, 96, onnx)
        rng = np.random.default_rng(5)
        cls.images = rng.random((3, 96, 96, 3), dtype=np.float32)
        cls.input = os.path.join(cls.tmp.name, "images.npy")
        np.save(cls.input, cls.images)
        cls.features = ort_runner.run(onnx, cls.images, "features")
        cls.layers = [(d.weights, d.bias, d.activation) for d in net.dense_head]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_dense_layer_outputs(self):
        for i, name in enumerate(["embedding_layer", "dense_1"]):
            got = featx_cli.extract(self.model, [self.input], "--layer", name)
            self.assertEqual(got.shape, (3, self.net.dense_head[i].out_features))
            want = featx_cli.head_reference(self.features, self.layers, upto=i)
            featx_cli.assert_close(self, got, want, 1e-5, name)

    def test_classify_prints_the_heads_probabilities(self):
        want = featx_cli.head_reference(self.features, self.layers)
        results = featx_cli.classify(self.model, [self.input], "-k", "5")
        self.assertEqual(len(results), 3)
        for i, (name, ranks) in enumerate(results):
            self.assertEqual(name, f"{self.input}[{i}]")
            self.assertEqual([r for r, _, _, _ in ranks], [1, 2, 3, 4, 5])
            order = list(np.argsort(-want[i], kind="stable"))
            self.assertEqual([c for _, _, c, _ in ranks], order)
            self.assertEqual([label for _, _, _, label in ranks], ["abcde"[c] for c in order])
            for _, p, c, _ in ranks:
                self.assertAlmostEqual(p, want[i, c], delta=1e-5)

    def test_pooled_features_and_keras_names(self):
        pooled = featx_cli.extract(self.model, [self.input], "--layer", "global_average_pooling2d")
        self.assertTrue(np.array_equal(pooled, featx_cli.extract(self.model, [self.input])))
        featx_cli.assert_close(self, pooled, self.features, 5e-5, "features")
        for keras, slim in [("Conv1_relu", "Conv"), ("expanded_conv_depthwise_relu", "expanded_conv/depthwise"),
                            ("expanded_conv_project_BN", "expanded_conv/project"),
                            ("block_3_expand_relu", "expanded_conv_3/expand"),
                            ("block_5_add", "expanded_conv_5"), ("block_6_project_BN", "expanded_conv_6/project"),
                            ("out_relu", "Conv_1")]:
            a = featx_cli.extract(self.model, [self.input], "--layer", keras, "--pool", "none")
            b = featx_cli.extract(self.model, [self.input], "--layer", slim, "--pool", "none")
            self.assertTrue(np.array_equal(a, b), f"{keras} vs {slim}")

    def test_bad_layer_names(self):
        for name, needle in [("block_3_expand_BN", "nearest is 'block_3_expand_relu'"),
                             ("Conv1", "nearest is 'Conv1_relu'"),
                             ("block_1_add", "block 1 has no residual add; its output is 'block_1_project_BN'"),
                             ("block_0_depthwise_relu", "no layer or block named 'block_0_depthwise_relu'"),
                             ("block_04_add", "no layer or block named 'block_04_add'"),
                             ("block_4_pad", "the nearest is 'block_4_expand_relu'"),
                             ("dense_9", "no layer or block named 'dense_9'")]:
            proc = featx_cli.run("extract", "-m", self.model, "--layer", name, self.input, check=False)
            self.assertNotEqual(proc.returncode, 0)
            self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
            self.assertIn(needle, proc.stderr)
        proc = featx_cli.run("extract", "-m", self.model, "--layer", "dense_1", "--pool", "max",
                             self.input, check=False)
        self.assertIn("needs --pool avg", proc.stderr)

    def test_inspect_lists_both_names_and_the_head(self):
        support.assert_contains(self, featx_cli.run("inspect", self.model).stdout,
                                "expanded_conv_3/expand", "block_3_expand_relu", "embedding_layer",
                                "dense_1", "(no bias)", "format_version: 2")


class LabelsTest(unittest.TestCase):
    """Teachable Machine's numbered labels.txt, stored by the exporter or given to classify."""

    def test_numbered_labels_in_the_model_and_on_the_command_line(self):
        featx_cli.binary()
        with tempfile.TemporaryDirectory() as tmp:
            tm = os.path.join(tmp, "labels.txt")
            with open(tm, "w", newline="") as f:
                f.write("0 Cat\r\n1 Big dog\r\n2 Bird\r\n")
            model = os.path.join(tmp, "tm.featx")
            proc = subprocess.run([sys.executable, os.path.join(support.TOOLS, "export_weights.py"),
                                   "--random", "--alpha", "0.35", "--resolution", "96", "--seed", "3",
                                   "--dense", "16:relu,3:softmax", "--labels", tm, "-o", model],
                                  capture_output=True, text=True)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            image = os.path.join(tmp, "x.npy")
            np.save(image, np.random.default_rng(1).random((96, 96, 3), dtype=np.float32))
            ranks = featx_cli.classify(model, [image], "-k", "3")[0][1]
            self.assertEqual(sorted(label for *_, label in ranks), ["Big dog", "Bird", "Cat"])
            self.assertEqual({c: label for _, _, c, label in ranks}, {0: "Cat", 1: "Big dog", 2: "Bird"})
            other = os.path.join(tmp, "other.txt")
            with open(other, "w") as f:
                f.write("x\ny\nz\n")
            ranks = featx_cli.classify(model, [image], "-k", "3", "--labels", other)[0][1]
            self.assertEqual({c: label for _, _, c, label in ranks}, {0: "x", 1: "y", 2: "z"})
            with open(other, "w") as f:
                f.write("x\ny\n")
            proc = subprocess.run([sys.executable, os.path.join(support.TOOLS, "export_weights.py"),
                                   "--random", "--alpha", "0.35", "--resolution", "96", "--seed", "3",
                                   "--dense", "16:relu,3:softmax", "--labels", other, "-o", model],
                                  capture_output=True, text=True)
            self.assertEqual(proc.returncode, 2)
            self.assertIn("2 labels for 3 outputs", proc.stderr)


class BadHeadFileTest(unittest.TestCase):
    """Heads the exporter would refuse, written anyway: the runtime refuses them in one line."""

    def write_unvalidated(self, net, path):
        net.validate = lambda: None  # the runtime must not trust the writer's checks
        writer.write_featx(net, path)

    def test_bad_heads_refused_at_load(self):
        featx_cli.binary()
        cases = []
        net = random_network(0.35, 96, seed=2, dense="8:relu,3:softmax")
        net.dense_head[1].weights = np.zeros((3, 7), np.float32)
        cases.append((net, "dense layer 'dense_1' takes 7 inputs, the layer before gives 8"))
        net = random_network(0.35, 96, seed=2, dense="8:relu")
        net.dense_head[0].weights = np.zeros((8, 1000), np.float32)
        cases.append((net, "dense layer 'dense' takes 1000 inputs, the layer before gives 1280"))
        net = random_network(0.35, 96, seed=2, dense="8:relu")
        net.dense_head[0].bias = np.zeros(5, np.float32)
        cases.append((net, "bias has 5 values, expected 8"))
        net = random_network(0.35, 96, seed=2, dense="8:relu")
        net.dense_head[0].name = "Conv_1"
        cases.append((net, "empty or duplicate layer name"))
        net = random_network(0.35, 96, seed=2, dense="8:relu")
        net.dense_head[0].weights[3, 4] = np.nan
        cases.append((net, "non-finite weight"))
        net = random_network(0.35, 96, seed=2, dense="8:relu,3:softmax")
        net.labels = ["x", "y"]
        cases.append((net, "2 labels for 3 outputs"))
        with tempfile.TemporaryDirectory() as tmp:
            for i, (net, needle) in enumerate(cases):
                path = os.path.join(tmp, f"bad{i}.featx")
                self.write_unvalidated(net, path)
                proc = featx_cli.run("inspect", path, check=False)
                self.assertEqual(proc.returncode, 1, proc.stdout)
                lines = proc.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, proc.stderr)
                self.assertIn(path, lines[0])
                self.assertIn(needle, lines[0])


if __name__ == "__main__":
    unittest.main()
