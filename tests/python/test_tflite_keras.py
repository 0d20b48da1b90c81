""".tflite files in the layout of TF's Keras converter (tf.lite.TFLiteConverter.from_keras_model).

TensorFlow is not available here, so tools/featx_export/tflite_writer.py writes
that layout from a random MobileNetV2 with a Dense head: batch norm folded
into conv + bias, PAD + VALID for the stride-2 depthwise convs (and the stem
in the older layout), fused or separate ReLU6, MEAN, FULLY_CONNECTED +
SOFTMAX, in float32, float16, dynamic-range int8, full-integer int8 and
uint8. The reader must give back exactly the folded, dequantised weights;
the folded network must compute what the raw one does (a numpy check that
does not trust the writer's fold); and featx on the exported .featx must
match ONNX Runtime and numpy on the weights read from the .tflite.
"""

import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import featx_cli
import support
from featx_export import numpy_reference, onnx_export, ort_runner, tflite_reader, tflite_writer
from featx_export.random_model import random_network

HEAD = "embedding_layer=16:relu,3:softmax"
SCRIPT = os.path.join(support.TOOLS, "export_weights.py")


def keras_net(alpha=0.35, resolution=96, seed=3, dense=HEAD):
    return random_network(alpha, resolution, seed, dense=dense)


def assert_read_equals(test, expected, actual):
    """Every conv and Dense layer bit-identical, plus the normalisation and structure."""
    test.assertEqual([b.name for b in actual.blocks], [b.name for b in expected.blocks])
    for a, b in zip(expected.layers(), actual.layers()):
        test.assertEqual((a.name, a.kind, a.stride, a.activation), (b.name, b.kind, b.stride, b.activation))
        test.assertIsNone(b.batch_norm, b.name)
        test.assertEqual(b.kernel.dtype, np.float32)
        test.assertTrue(np.array_equal(a.kernel, b.kernel), f"{a.name} kernel")
        test.assertTrue(np.array_equal(a.bias, b.bias), f"{a.name} bias")
    test.assertEqual([(d.name, d.activation) for d in actual.dense_head],
                     [(d.name, d.activation) for d in expected.dense_head])
    for a, b in zip(expected.dense_head, actual.dense_head):
        test.assertTrue(np.array_equal(a.weights, b.weights), f"{a.name} weights")
        test.assertEqual(a.bias is None, b.bias is None, a.name)
        if a.bias is not None:
            test.assertTrue(np.array_equal(a.bias, b.bias), f"{a.name} bias")
    test.assertEqual((actual.input_scale, actual.input_offset), (expected.input_scale, expected.input_offset))
    test.assertEqual((actual.width_multiplier, actual.resolution), (expected.width_multiplier, expected.resolution))
    test.assertIsNone(actual.classifier)
    test.assertEqual(actual.source_format, "tflite")


class KerasTfliteReadTest(unittest.TestCase):
    """The reader on the converter's layout: weights, names, padding, normalisation, refusals."""

    @classmethod
    def setUpClass(cls):
        cls.net = keras_net()
        cls.folded = tflite_writer.fold_batch_norm(cls.net)

    def read(self, **options):
        f = tflite_writer.write_tflite(self.net, **options)
        return f, tflite_reader.read_tflite_bytes(f.data, "keras.tflite")

    def test_float32_gives_the_folded_weights(self):
        f, net = self.read()
        assert_read_equals(self, f.expected, net)
        # The writer's own expectation is the fold of the source network, exactly.
        for a, b in zip(self.folded.layers(), net.layers()):
            self.assertTrue(np.array_equal(a.kernel, b.kernel) and np.array_equal(a.bias, b.bias), a.name)
        for a, b in zip(self.net.dense_head, net.dense_head):
            self.assertTrue(np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias), a.name)
        self.assertEqual((net.input_scale, net.input_offset), (2.0, -1.0))
        self.assertTrue(any("assumed the Keras MobileNetV2 range" in line for line in net.report), net.report)
        self.assertTrue(any("4 PAD + VALID conv pairs" in line for line in net.report), net.report)
        self.assertIn("kept dense 'embedding_layer' 1280 -> 16 relu (op 67 FULLY_CONNECTED)", net.report)
        self.assertIn("kept dense 'dense_1' 16 -> 3 softmax (ops 68 FULLY_CONNECTED, 69 SOFTMAX)", net.report)

    def test_folded_network_computes_what_the_raw_one_does(self):
        # Independent of the writer's fold: raw batch norm (source) vs the weights read back.
        _, net = self.read()
        x = np.random.default_rng(0).random((1, 96, 96, 3))
        raw = numpy_reference.forward(self.net, x)["features"]
        folded = numpy_reference.forward(net, x)["features"]
        rel = np.linalg.norm(folded - raw) / np.linalg.norm(raw)
        self.assertLess(rel, 1e-6)
        self.assertLess(np.abs(folded - raw).max(), 1e-5)

    def test_quantised_variants_and_layouts(self):
        for quantization in ("float16", "dynamic", "int8", "uint8", "float32"):
            for layout in ({}, {"stem_padding": "pad", "separate_activations": True}):
                with self.subTest(quantization=quantization, **layout):
                    f, net = self.read(quantization=quantization, **layout)
                    assert_read_equals(self, f.expected, net)
                    for a, b in zip(self.folded.layers(), net.layers()):
                        # within half a quantisation step of the float weights
                        span = np.abs(a.kernel).max() if quantization != "uint8" else (
                            max(a.kernel.max(), 0) - min(a.kernel.min(), 0))
                        # (uint8: a whole step, the rounded zero point moves the grid)
                        step = {"float32": 0, "float16": 2.0 ** -11, "dynamic": 0.5 / 127,
                                "int8": 0.5 / 127, "uint8": 1 / 255}[quantization] * span
                        self.assertLessEqual(np.abs(a.kernel - b.kernel).max(), step * 1.0001 + 1e-12, a.name)
                    if layout:
                        self.assertTrue(any("taken as the activation" in line for line in net.report))
                        self.assertTrue(any("5 PAD + VALID conv pairs" in line for line in net.report))
        # int8 with an int8 graph input: the normalisation comes from its quantisation
        f, net = self.read(quantization="int8", input_type="int8")
        assert_read_equals(self, f.expected, net)
        self.assertAlmostEqual(net.input_scale, 2.0, places=6)

    def test_dense_names(self):
        self.assertEqual(tflite_reader.keras_layer_name(
            ["sequential/dense/MatMul;sequential/dense/Relu;sequential/dense/BiasAdd"]), "dense")
        self.assertEqual(tflite_reader.keras_layer_name(["model/my_head/BiasAdd/ReadVariableOp"]), "my_head")
        self.assertIsNone(tflite_reader.keras_layer_name(["StatefulPartitionedCall:0", "tensor_3"]))
        net = keras_net(dense="embedding_layer=16:relu,probs=3:softmax")
        for options, names in [({}, ["embedding_layer", "probs"]),
                               ({"tensor_names": False}, ["dense", "probs"]),  # signature's output name
                               ({"tensor_names": False, "signature": False}, ["dense", "dense_1"])]:
            f = tflite_writer.write_tflite(net, **options)
            back = tflite_reader.read_tflite_bytes(f.data, "names.tflite")
            self.assertEqual([d.name for d in back.dense_head], names, options)
        net = keras_net(dense="a=8:relu,b=4:linear,c=5:linear")
        for d, name in zip(net.dense_head, ["Conv_1", "dense", "dense"]):  # clash with a conv, and twice
            d.name = name
        net.dense_head[2].bias = None
        back = tflite_reader.read_tflite_bytes(tflite_writer.write_tflite(net).data, "clash.tflite")
        self.assertEqual([d.name for d in back.dense_head], ["dense_1", "dense", "dense_2"])
        self.assertIsNone(back.dense_head[2].bias)
        self.assertIn("(no bias)", back.report[-3] + back.report[-2] + back.report[-1])

    def test_imagenet_top_is_the_classifier(self):
        # keras.applications.MobileNetV2(include_top=True): one Dense(1000, softmax), "predictions".
        net = keras_net(dense="predictions=1000:softmax")
        back = tflite_reader.read_tflite_bytes(tflite_writer.write_tflite(net).data, "top.tflite")
        self.assertEqual(back.dense_head, [])
        self.assertEqual((back.classifier.num_classes, back.classifier.label_offset), (1000, 1))
        self.assertTrue(np.array_equal(back.classifier.weights, net.dense_head[0].weights))
        self.assertTrue(np.array_equal(back.classifier.bias, net.dense_head[0].bias))
        self.assertIn("kept classifier 'predictions' 1280 -> 1000 (ops 67 FULLY_CONNECTED, 68 SOFTMAX): "
                      "the ImageNet top, kept as logits (featx classify applies softmax)", back.report)
        back = tflite_reader.read_tflite_bytes(
            tflite_writer.write_tflite(keras_net(dense="64:relu,1000:softmax")).data, "two.tflite")
        self.assertIsNone(back.classifier)  # a user's head keeps its layers
        self.assertEqual([d.out_features for d in back.dense_head], [64, 1000])

    def test_odd_input_sizes_whose_pads_are_same(self):
        # correct_pad pads (1, 1) on odd sizes: TF SAME for a stride-2 3x3 conv there too.
        for size in ((97, 97), (97, 80), (225, 161)):
            with self.subTest(size=size):
                f = tflite_writer.write_tflite(self.net, input_size=size, stem_padding="pad")
                net = tflite_reader.read_tflite_bytes(f.data, "odd.tflite")
                assert_read_equals(self, f.expected, net)
                self.assertEqual(net.resolution, size[0])
                self.assertTrue(any(f"at this file's {size[0]}x{size[1]} input" in line for line in net.report))

    def test_pads_that_are_not_same_are_refused(self):
        even = lambda layer, h, w: ((0, 1), (0, 1))  # noqa: E731 - correct_pad's even-size pads everywhere
        cases = [
            ({"input_size": (97, 97), "pads": even},
             r"^odd\.tflite: op 4 PAD \[\[0, 0\], \[0, 1\], \[0, 1\], \[0, 0\]\] \+ op 5 DEPTHWISE_CONV_2D "
             r"VALID \(3x3, stride 2\) on a 49x49 input pads \[\[0, 1\], \[0, 1\]\], TF SAME pads "
             r"\[\[1, 1\], \[1, 1\]\] there: featx runs SAME padding only$"),
            ({"pads": lambda layer, h, w: ((1, 1), (1, 1))},
             r"^odd\.tflite: op 4 PAD \[\[0, 0\], \[1, 1\], \[1, 1\], \[0, 0\]\] \+ op 5 DEPTHWISE_CONV_2D "
             r"VALID .* on a 48x48 input pads \[\[1, 1\], \[1, 1\]\], TF SAME pads \[\[0, 1\], \[0, 1\]\]"),
            ({"stem_padding": "pad", "pads": lambda layer, h, w: ((1, 1), (1, 1)) if layer == "Conv1_pad"
              else tflite_writer.correct_pad(h, w)},
             r"^odd\.tflite: op 0 PAD \[\[0, 0\], \[1, 1\], \[1, 1\], \[0, 0\]\] \+ op 1 CONV_2D VALID "
             r"\(3x3, stride 2\) on a 96x96 input"),
            ({"input_size": (96, 97), "pads": lambda layer, h, w: ((0, 1), (1, 2)) if layer == "block_6_pad"
              else tflite_writer.correct_pad(h, w)},
             r"op 24 PAD \[\[0, 0\], \[0, 1\], \[1, 2\], \[0, 0\]\] .* on a 12x13 input pads "
             r"\[\[0, 1\], \[1, 2\]\], TF SAME pads \[\[0, 1\], \[1, 1\]\]"),
        ]
        for options, pattern in cases:
            with self.subTest(pattern=pattern[:60]):
                data = tflite_writer.write_tflite(self.net, **options).data
                with self.assertRaisesRegex(ValueError, pattern) as ctx:
                    tflite_reader.read_tflite_bytes(data, "odd.tflite")
                self.assertNotIn("\n", str(ctx.exception))

    def test_input_normalisation_ops(self):
        f32 = lambda v: float(np.float32(v))  # noqa: E731
        for ops, scale, offset in [
                ([("MUL", 1 / 127.5), ("ADD", -1.0)], 255 * f32(1 / 127.5), -1.0),  # Rescaling(1/127.5, -1)
                ([("DIV", 127.5), ("SUB", 1.0)], 255 / 127.5, -1.0),  # preprocess_input inside the model
                ([("MUL", 2.0), ("SUB", 1.0)], 2.0, -1.0),  # maps [0, 1] onto [-1, 1]: input in [0, 1]
                ([("MUL", 1 / 255)], 255 * f32(1 / 255), 0.0)]:  # Rescaling(1/255): pixels, range [0, 1]
            with self.subTest(ops=ops):
                for quantization in ("float32", "dynamic"):
                    f, net = self.read(preprocessing=ops, quantization=quantization)
                    self.assertAlmostEqual(net.input_scale, scale, places=12)
                    self.assertAlmostEqual(net.input_offset, offset, places=12)
                    self.assertTrue(any("normalised in the graph by ops" in line for line in net.report))
                    f.expected.input_scale, f.expected.input_offset = net.input_scale, net.input_offset
                    assert_read_equals(self, f.expected, net)
        data = tflite_writer.write_tflite(self.net, preprocessing=[("MUL", [1, 2, 3])]).data
        with self.assertRaisesRegex(ValueError, r"^pc\.tflite: op 0 MUL by \[1\.0, 2\.0, 3\.0\]: per-channel"):
            tflite_reader.read_tflite_bytes(data, "pc.tflite")

    def test_bad_files_one_line_value_errors(self):
        data = tflite_writer.write_tflite(self.net).data
        for cut in (7, 64, 4096, len(data) // 3, len(data) - 100):
            with self.subTest(cut=cut):
                with self.assertRaisesRegex(ValueError, r"^cut\.tflite: (truncated|not a TFLite)") as ctx:
                    tflite_reader.read_tflite_bytes(data[:cut], "cut.tflite")
                self.assertNotIn("\n", str(ctx.exception))
        cases = []
        net = keras_net()
        net.dense_head[0].weights = net.dense_head[0].weights[:, :1000]
        cases.append((net, r"op 67 FULLY_CONNECTED: weights \[16, 1000\] take 1000 inputs, but it follows "
                           r"the 1280 features of Conv_1"))
        net = keras_net()
        net.dense_head[1].weights = net.dense_head[1].weights[:, :9]
        cases.append((net, r"op 68 FULLY_CONNECTED: weights \[3, 9\] take 9 inputs, but it follows the 16 "
                           r"outputs of the layer before"))
        net = keras_net()
        net.dense_head[1].activation = "tanh"
        cases.append((net, r"op 68 FULLY_CONNECTED: unknown activation tanh \(featx runs linear, relu, "
                           r"relu6, softmax\)"))
        net = keras_net()
        net.dense_head[1].activation = "sigmoid"
        cases.append((net, r"op 69 LOGISTIC after op 68 FULLY_CONNECTED is not supported"))
        net = keras_net()
        net.blocks[3].expand.activation = "tanh"
        cases.append((net, r"op 11 CONV_2D expanded_conv_3/expand: unsupported fused activation tanh"))
        for net, pattern in cases:
            with self.subTest(pattern=pattern[:40]):
                data = tflite_writer.write_tflite(net).data
                with self.assertRaisesRegex(ValueError, r"^bad\.tflite: " + pattern) as ctx:
                    tflite_reader.read_tflite_bytes(data, "bad.tflite")
                self.assertNotIn("\n", str(ctx.exception))

    def test_export_weights_cli(self):
        with tempfile.TemporaryDirectory() as tmp:
            good, bad = os.path.join(tmp, "keras.tflite"), os.path.join(tmp, "bad.tflite")
            tflite_writer.write_tflite(self.net, good, quantization="int8")
            net = keras_net()
            net.dense_head[1].activation = "sigmoid"
            tflite_writer.write_tflite(net, bad)
            out = os.path.join(tmp, "m.featx")
            proc = subprocess.run([sys.executable, SCRIPT, "--tflite", good, "-o", out, "--print-summary"],
                                  capture_output=True, text=True)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertIn("export_weights: kept dense 'embedding_layer' 1280 -> 16 relu", proc.stderr)
            self.assertIn("export_weights: skipped QUANTIZE op 0", proc.stderr)
            self.assertIn("dense dense_1", proc.stdout)
            self.assertTrue(os.path.getsize(out) > 0)
            for path, needle in [(bad, f"{bad}: op 69 LOGISTIC after op 68 FULLY_CONNECTED"),
                                 (good + ".cut", f"{good}.cut: truncated or damaged TFLite flatbuffer")]:
                if path.endswith(".cut"):
                    with open(good, "rb") as f, open(path, "wb") as g:
                        g.write(f.read()[:5000])
                proc = subprocess.run([sys.executable, SCRIPT, "--tflite", path, "-o", out + "2"],
                                      capture_output=True, text=True)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertNotIn("Traceback", proc.stderr)
                lines = proc.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, proc.stderr)
                self.assertTrue(lines[0].startswith(f"export_weights: error: {needle}"), lines[0])


# (quantization, alpha, input size, layout options): the runtime on the exported .featx.
RUNTIME_CASES = [
    ("float32", 0.35, (96, 96), {}),
    ("float32", 0.35, (97, 81), {"stem_padding": "pad", "separate_activations": True}),
    ("float16", 0.35, (96, 96), {}),
    ("dynamic", 0.35, (96, 96), {"preprocessing": [("MUL", 1 / 127.5), ("ADD", -1.0)]}),
    ("int8", 0.35, (96, 96), {}),
    ("uint8", 0.5, (128, 128), {"separate_activations": True}),
    ("float32", 1.0, (224, 224), {}),
]


class KerasTfliteRuntimeTest(unittest.TestCase):
    """featx on .featx files exported from these .tflite files: features vs ONNX Runtime and
    numpy on the weights read from the .tflite, the head vs numpy on the Dense weights read."""

    @classmethod
    def setUpClass(cls):
        support.require_ort()
        featx_cli.binary()
        cls.tmp = tempfile.TemporaryDirectory(prefix="featx_keras_tflite_")
        cls.errors = []

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()
        if os.environ.get("FEATX_PRINT_ERRORS"):
            for row in cls.errors:
                sys.stderr.write("%-44s %s\n" % row)

    def test_features_and_head(self):
        for i, (quantization, alpha, (h, w), options) in enumerate(RUNTIME_CASES):
            with self.subTest(quantization=quantization, alpha=alpha, size=(h, w)):
                self.check_case(i, quantization, alpha, h, w, options)

    def check_case(self, i, quantization, alpha, h, w, options):
        tmp = self.tmp.name
        source = random_network(alpha, h, seed=20 + i, dense=HEAD)
        path = os.path.join(tmp, f"case{i}.tflite")
        tflite_writer.write_tflite(source, path, quantization=quantization, input_size=(h, w), **options)
        net = tflite_reader.read_tflite(path)  # the weights both references use
        model = os.path.join(tmp, f"case{i}.featx")
        proc = subprocess.run([sys.executable, SCRIPT, "--tflite", path, "-o", model],
                              capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        images = np.random.default_rng(i).random((2, h, w, 3), dtype=np.float32)
        inputs = os.path.join(tmp, f"case{i}.npy")
        np.save(inputs, images)

        got = featx_cli.extract(model, [inputs])
        onnx = os.path.join(tmp, f"case{i}.onnx")
        onnx_export.to_onnx(net, h, w, onnx)
        ort = ort_runner.run(onnx, images, "features")
        references = [("onnxruntime", ort)]
        if alpha < 1.0:  # float64 numpy at 1.0/224 takes too long for every run
            references.append(("numpy", numpy_reference.forward(net, images)["features"]))
        label = f"{quantization} {alpha}/{h}x{w}{' ' + ','.join(options) if options else ''}"
        for name, ref in references:
            err = float(np.abs(got - ref).max())
            rel = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
            self.errors.append((f"{label} features vs {name}", f"max {err:.2e} rel L2 {rel:.2e}"))
            self.assertLessEqual(err, 5e-5, f"{label} vs {name}")
            self.assertLessEqual(rel, 1e-5, f"{label} vs {name}")

        layers = [(d.weights, d.bias, d.activation) for d in net.dense_head]
        for k, d in enumerate(net.dense_head):
            out = featx_cli.extract(model, [inputs], "--layer", d.name)
            want = featx_cli.head_reference(ort, layers, upto=k)
            err = featx_cli.assert_close(self, out, want, 1e-5, f"{label} {d.name}")
            self.errors.append((f"{label} {d.name} vs numpy head", f"max {err:.2e}"))
        probs = featx_cli.head_reference(ort, layers)
        results = featx_cli.classify(model, [inputs], "-k", "3")
        self.assertEqual(len(results), 2)
        for n, (_, ranks) in enumerate(results):
            self.assertEqual([c for _, _, c, _ in ranks], list(np.argsort(-probs[n], kind="stable")))
            for _, p, c, _ in ranks:
                self.assertAlmostEqual(p, probs[n, c], delta=1e-5)

    def test_imagenet_top_classifies_with_the_labels_file(self):
        support.require_shared()
        tmp = self.tmp.name
        net = keras_net(dense="predictions=1000:softmax")
        path, model = os.path.join(tmp, "top.tflite"), os.path.join(tmp, "top.featx")
        tflite_writer.write_tflite(net, path, quantization="int8")
        read = tflite_reader.read_tflite(path)
        proc = subprocess.run([sys.executable, SCRIPT, "--tflite", path, "-o", model], capture_output=True,
                              text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        images = np.random.default_rng(9).random((1, 96, 96, 3), dtype=np.float32)
        inputs = os.path.join(tmp, "top.npy")
        np.save(inputs, images)
        onnx = os.path.join(tmp, "top.onnx")
        onnx_export.to_onnx(read, 96, 96, onnx)
        c = read.classifier
        probs = featx_cli.head_reference(ort_runner.run(onnx, images, "features"),
                                         [(c.weights, c.bias, "softmax")])
        with open(os.path.join(support.IMAGES, "imagenet_labels.txt")) as f:
            labels = f.read().splitlines()
        (_, ranks), = featx_cli.classify(model, [inputs], "-k", "3", "--labels",
                                         os.path.join(support.IMAGES, "imagenet_labels.txt"))
        self.assertEqual([k for _, _, k, _ in ranks], list(np.argsort(-probs[0], kind="stable")[:3]))
        for _, p, k, label in ranks:
            self.assertAlmostEqual(p, probs[0, k], delta=1e-5)
            self.assertEqual(label, labels[k + 1])  # 1000 classes: line 0 is "background"


if __name__ == "__main__":
    unittest.main()
