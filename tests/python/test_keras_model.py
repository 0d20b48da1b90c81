"""Whole Keras models, head included: every container Keras writes (Keras 2 .h5 with its
model_config, .keras archives of Keras 3 and tf.keras 2.13 / 2.15, Windows group names,
bare .weights.h5 plus config), written by keras_writers from a random network.

Per format: the IR equals the source weights exactly; the .featx written from it gives,
through the featx CLI, base features within 5e-5 / 1e-5 of ONNX Runtime on the
exporter's ONNX graph and head outputs within 1e-5 of numpy on Dense weights this test
reads itself with h5py / zipfile. Bad input fails with one line naming file and layer.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile

import numpy as np

import support  # noqa: F401  (import path)
import featx_cli
import keras_writers as kw
from featx_export import onnx_export, ort_runner, reader, writer
from featx_export.keras_reader import read_keras
from featx_export.random_model import random_network
from network_compare import assert_same_head, assert_same_weights

SCRIPT = os.path.join(support.TOOLS, "export_weights.py")
ROWS = 96


def tm_network():
    """Teachable Machine's head: Dense(100, relu), Dense(N, softmax, use_bias=False)."""
    net = random_network(0.35, ROWS, seed=12, dense="dense_Dense1=100:relu,dense_Dense2=4:softmax")
    net.dense_head[-1].bias = None
    return net


MEASURED = {}  # format -> (features max abs, features rel L2, head max abs)


class KerasModelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="featx_keras_")
        cls.net = random_network(0.35, ROWS, seed=11, dense="embedding_layer=128:relu,10:softmax")
        cls.tm = tm_network()
        cls.x = np.random.default_rng(5).uniform(0, 1, (2, ROWS, ROWS, 3)).astype(np.float32)
        cls.ort = {}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)
        if MEASURED:
            worst = np.max(np.array(list(MEASURED.values())), axis=0)
            sys.stderr.write(f"\nkeras formats {len(MEASURED)}: features max|err| {worst[0]:.2g}, "
                             f"rel L2 {worst[1]:.2g}; head max|err| {worst[2]:.2g}\n")

    def path(self, name):
        return os.path.join(self.tmp, name)

    # -- checks shared by every format

    def ort_features(self, net):
        key = id(net)
        if key not in self.ort:
            if not ort_runner.available():
                return None
            onnx_path = self.path(f"base_{key}.onnx")
            onnx_export.to_onnx(net, ROWS, ROWS, onnx_path)
            self.ort[key] = ort_runner.run(onnx_path, self.x, "features")
        return self.ort[key]

    def check(self, label, path, expected, dense_layers, config=None, scale=2.0, offset=-1.0):
        """Read `path`, compare with `expected`; write .featx, run it through the CLI."""
        back = read_keras(path, config_path=config)
        self.assertEqual((back.input_scale, back.input_offset), (scale, offset))
        back.input_scale, back.input_offset = expected.input_scale, expected.input_offset
        assert_same_weights(self, expected, back)
        back.input_scale, back.input_offset = scale, offset
        assert_same_head(self, expected, back)
        self.assertEqual(back.resolution, ROWS)
        self.assertTrue(any(line.startswith("kept dense") for line in back.report), back.report)
        model = self.path(label + ".featx")
        writer.write_featx(back, model)
        again = reader.read_featx(model)
        assert_same_head(self, expected, again)
        ref = self.ort_features(back)
        if ref is None:
            support._loud_skip("ONNX Runtime missing: the Keras models were compared at the IR "
                               "level only")
        x = self.path("x.npy")
        np.save(x, self.x)
        features = featx_cli.extract(model, [x])  # a missing binary skips loudly here
        err = featx_cli.assert_close(self, features, ref, 5e-5, label)
        rel = featx_cli.rel_l2(features, ref)
        self.assertLessEqual(rel, 1e-5, label)
        want = featx_cli.head_reference(ref, dense_layers)
        got = featx_cli.extract(model, [x], "--layer", expected.dense_head[-1].name)
        self.assertEqual(got.shape, want.shape)
        head_err = featx_cli.assert_close(self, got, want, 1e-5, label)
        if expected.dense_head[-1].activation == "softmax":
            top = [ranks[0] for _name, ranks in featx_cli.classify(model, [x], "-k", "1")]
            self.assertEqual([c for _, _, c, _ in top], list(np.argmax(want, axis=1)))
            for (_, p, _, _), row in zip(top, want):
                self.assertAlmostEqual(p, float(row.max()), delta=1e-5)
        MEASURED[label] = (err, rel, head_err)
        return back

    def dense_from_file(self, path, refs, member=None, activations=None):
        layers = kw.read_dense(path, refs, member)
        if activations:
            layers = [(w, b, a) for (w, b, _), a in zip(layers, activations)]
        return layers

    # -- Keras 2 .h5 with model_config

    def test_keras2_h5_sequential_applications_base(self):
        path = self.path("seq.h5")
        refs = kw.keras2_h5(path, kw.sequential_model(self.net))
        with __import__("h5py").File(path, "r") as f:  # the layout really is Keras 2's
            self.assertIn("model_config", f.attrs)
            self.assertIn("Conv1/kernel:0", f["model_weights/mobilenetv2_0.35_96"])
            self.assertIn("embedding_layer/kernel:0", f["model_weights/embedding_layer"])
        back = self.check("k2_sequential", path, self.net, self.dense_from_file(path, refs))
        self.assertEqual(back.source_format, "keras_h5")
        self.assertIn("kept pooling 'global_average_pooling2d' (mean over H and W: featx's feature "
                      "vector)", back.report)

    def test_keras2_h5_functional_inline(self):
        path = self.path("inline.h5")
        refs = kw.keras2_h5(path, kw.functional_inline(self.net))
        back = self.check("k2_functional", path, self.net, self.dense_from_file(path, refs))
        self.assertIn("skipped dropout 'dropout' (identity at inference)", back.report)

    def test_keras2_h5_nested_with_rescaling_and_augmentation(self):
        path = self.path("nested.h5")
        refs = kw.keras2_h5(path, kw.functional_nested(self.net), keras_version="2.12.0",
                            name_prefix="mobilenetv2_0.35_96/")
        acts = [d.activation for d in self.net.dense_head]
        back = self.check("k2_nested", path, self.net, self.dense_from_file(path, refs, activations=acts))
        support.assert_contains(
            self, "\n".join(back.report), "skipped RandomFlip 'random_flip'",
            "kept rescaling 'rescaling' (0.00784313725 * x - 1)",
            "folded activation 'activation' (softmax) into dense 'dense_1' -> softmax",
            "input: the model takes pixels in [0, 255]")

    def test_keras3_legacy_h5(self):
        """model.save('m.h5') in Keras 3: the same HDF5 layout, Keras 3 configs (inbound nodes
        as {"args", "kwargs"}) and variable paths as weight names."""
        path = self.path("k3legacy.h5")
        kw.keras2_h5(path, kw.functional_nested(self.net), keras_version="3.3.3",
                     config_dialect="keras3", name_prefix="mobilenetv2_0.35_96/")
        back = read_keras(path)
        assert_same_weights(self, self.net, back)
        assert_same_head(self, self.net, back)

    def read_preprocess_ops(self, path):
        """A model with preprocess_input's x / 127.5 - 1 inside: read as 2 x - 1, weights and
        head as written."""
        back = read_keras(path)
        self.assertAlmostEqual(back.input_scale, 2.0, places=12)
        self.assertAlmostEqual(back.input_offset, -1.0, places=12)
        assert_same_weights(self, self.net, back)
        assert_same_head(self, self.net, back)
        return back

    def test_keras2_h5_preprocess_input_ops(self):
        """x = preprocess_input(x) in a tf.keras Functional model: tf.math.truediv(127.5) and
        tf.math.subtract(1) TFOpLambda layers fold into the input normalisation."""
        path = self.path("ops.h5")
        kw.keras2_h5(path, kw.functional_nested(self.net, rescaling=False, tf_ops=True))
        self.read_preprocess_ops(path)

    def test_keras2_h5_rescaling_to_unit_range(self):
        """Rescaling(1/255) before the base: the base sees [0, 1], so internal = x."""
        model = kw.functional_nested(self.net)
        rescale = next(m for m in model.layers if getattr(m, "name", "") == "rescaling")
        rescale.config = {"scale": 1.0 / 255, "offset": 0.0}
        path = self.path("unit.h5")
        kw.keras2_h5(path, model)
        back = read_keras(path)
        self.assertAlmostEqual(back.input_scale, 1.0, places=12)
        self.assertEqual(back.input_offset, 0.0)

    def test_keras2_h5_teachable_machine(self):
        path = self.path("keras_model.h5")
        refs = kw.keras2_h5(path, kw.teachable_machine(self.tm, ROWS), keras_version="2.3.1")
        self.assertIsNone(refs[-1].bias)
        back = self.check("k2_teachable_machine", path, self.tm, self.dense_from_file(path, refs))
        self.assertIsNone(back.dense_head[-1].bias)
        self.assertIn("kept dense 'dense_Dense2' 100 -> 4 softmax (no bias)", back.report)

    def test_keras2_h5_imagenet_top_is_the_classifier(self):
        net = random_network(0.35, ROWS, seed=3, classes=1000)
        path = self.path("top.h5")
        kw.keras2_h5(path, kw.mobilenet_v2(net, ROWS, include_top=True))
        back = read_keras(path)
        assert_same_weights(self, net, back)
        self.assertEqual((back.classifier.label_offset, back.dense_head), (1, []))

    def test_keras2_h5_hub_keras_layer(self):
        handle = "https://tfhub.dev/google/imagenet/mobilenet_v2_035_96/feature_vector/5"
        path = self.path("hub.h5")
        refs = kw.keras2_h5(path, kw.hub_sequential(self.net, handle))
        back = read_keras(path)
        assert_same_weights(self, self.net, back)
        assert_same_head(self, self.net, back)
        self.assertEqual(back.resolution, 96)
        dense = self.dense_from_file(path, refs)
        self.assertTrue(np.array_equal(dense[0][0], back.dense_head[0].weights))

    def test_keras2_weights_only_with_config(self):
        model = kw.sequential_model(self.net)
        path = self.path("weights_only.h5")
        kw.keras2_h5(path, model, with_config=False)
        with self.assertRaisesRegex(ValueError, r"layers beyond MobileNetV2 \(dense_1, "
                                                r"embedding_layer\).*--keras-config"):
            read_keras(path)
        config = self.path("model.json")
        with open(config, "w") as f:
            f.write(kw.model_json(model))
        back = read_keras(path, config_path=config)
        assert_same_weights(self, self.net, back)
        assert_same_head(self, self.net, back)

    # -- .keras archives and .weights.h5

    def test_keras3_archive_sequential(self):
        path = self.path("k3.keras")
        refs = kw.keras_archive(path, kw.sequential_model(self.net, with_input=True), optimizer=True)
        with zipfile.ZipFile(path) as zf:
            self.assertEqual(zf.namelist(), ["metadata.json", "config.json", "model.weights.h5"])
        self.assertEqual(refs[0].kernel, "layers/dense/vars/0")
        back = self.check("keras3", path, self.net,
                          self.dense_from_file(path, refs, member="model.weights.h5"))
        self.assertEqual(back.source_format, "keras")

    def test_keras3_archive_nested_teachable_machine(self):
        path = self.path("tm.keras")
        refs = kw.keras_archive(path, kw.teachable_machine(self.tm, ROWS))
        self.assertEqual(refs[0].kernel, "layers/sequential_1/layers/dense/vars/0")
        back = self.check("keras3_nested", path, self.tm,
                          self.dense_from_file(path, refs, member="model.weights.h5"))
        self.assertIsNone(back.dense_head[-1].bias)

    def test_tf_keras_215_archive(self):
        path = self.path("tf215.keras")
        refs = kw.keras_archive(path, kw.functional_nested(self.net), dialect="tfkeras")
        self.assertEqual(refs[1].kernel, "_layer_checkpoint_dependencies/dense_1/vars/0")
        acts = [d.activation for d in self.net.dense_head]
        self.check("tf_keras_2.15", path, self.net,
                   self.dense_from_file(path, refs, member="model.weights.h5", activations=acts))

    def test_tf_keras_213_archive_counts_layers_twice(self):
        path = self.path("tf213.keras")
        refs = kw.keras_archive(path, kw.sequential_model(self.net), dialect="tfkeras213")
        self.assertEqual([r.kernel.split("/")[1] for r in refs], ["dense", "dense_2"])
        back = self.check("tf_keras_2.13", path, self.net,
                          self.dense_from_file(path, refs, member="model.weights.h5"))
        self.assertIn("tf.keras 2.12/2.13 group paths", back.report[0])
        # The numbering is recognised from the groups, not only from metadata.json.
        mislabelled = self.path("tf213_as_215.keras")
        kw.keras_archive(mislabelled, kw.sequential_model(self.net), dialect="tfkeras213",
                         keras_version="2.15.0")
        assert_same_weights(self, self.net, read_keras(mislabelled))

    def test_keras3_archive_preprocess_input_ops(self):
        """preprocess_input on a Keras 3 KerasTensor: TrueDivide and Subtract operations in the
        config (not layers: the weights file has no groups for them)."""
        path = self.path("k3ops.keras")
        kw.keras_archive(path, kw.functional_nested(self.net, rescaling=False, keras3_ops=True))
        back = self.read_preprocess_ops(path)
        self.assertIn("kept TrueDivide op 'true_divide' (y = 127.5) as part of the input "
                      "normalisation", back.report)

    def test_later_tf_keras_archive_uses_keras3_paths(self):
        path = self.path("tf216.keras")
        refs = kw.keras_archive(path, kw.sequential_model(self.net), dialect="tfkeras216")
        self.assertEqual(refs[0].kernel, "layers/dense/vars/0")
        back = read_keras(path)
        assert_same_weights(self, self.net, back)
        assert_same_head(self, self.net, back)
        self.assertIn("tf_keras, Keras 3's group paths (layers/...)", back.report[0])

    def test_windows_backslash_group_names(self):
        for dialect, model in (("keras3", kw.sequential_model(self.net, with_input=True)),
                               ("tfkeras", kw.functional_nested(self.net))):
            with self.subTest(dialect=dialect):
                path = self.path(f"win_{dialect}.keras")
                refs = kw.keras_archive(path, model, dialect=dialect, sep="\\")
                self.assertIn("\\", refs[0].kernel)
                acts = [d.activation for d in self.net.dense_head]
                back = self.check(f"windows_{dialect}", path, self.net,
                                  self.dense_from_file(path, refs, member="model.weights.h5",
                                                       activations=acts))
                self.assertIn("backslashes in group names", back.report[0])

    def test_bare_weights_h5_with_config(self):
        model = kw.functional_inline(self.net)
        path = self.path("model.weights.h5")
        refs = kw.weights_h5(path, model)
        with self.assertRaisesRegex(ValueError, "weights.h5 stores no layer names.*--keras-config"):
            read_keras(path)
        config = self.path("config.json")
        with open(config, "w") as f:
            f.write(kw.archive_config_json(model))
        self.check("weights_h5", path, self.net, self.dense_from_file(path, refs), config=config)
        # The config can come from a .keras archive of the same model.
        archive = self.path("same.keras")
        kw.keras_archive(archive, model)
        assert_same_weights(self, self.net, read_keras(path, config_path=archive))

    def test_cli_keras_option_and_alias(self):
        path = self.path("cli.keras")
        kw.keras_archive(path, kw.sequential_model(self.net, with_input=True))
        out = self.path("cli.featx")
        for flag in ("--keras", "--keras-h5"):
            proc = subprocess.run([sys.executable, SCRIPT, flag, path, "-o", out, "--print-summary"],
                                  capture_output=True, text=True)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertIn("export_weights: kept dense 'embedding_layer' 1280 -> 128 relu", proc.stderr)
            self.assertIn("dense embedding_layer", proc.stdout)
            assert_same_head(self, self.net, reader.read_featx(out))
        proc = subprocess.run([sys.executable, SCRIPT, "--tflite", path, "--keras-config", path,
                               "-o", out], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("--keras-config goes with --keras", proc.stderr)


class KerasModelErrorsTest(unittest.TestCase):
    """Bad input: one line, naming the file and the layer, from the library and the CLI."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="featx_keras_err_")
        cls.net = random_network(0.35, ROWS, seed=13, dense="embedding_layer=32:relu,5:softmax")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def assert_error(self, path, needle, config=None, cli=False):
        """The library's ValueError; with `cli`, export_weights' one line and exit code 2 too."""
        with self.assertRaises(ValueError) as ctx:
            read_keras(path, config_path=config)
        message = str(ctx.exception)
        self.assertNotIn("\n", message)
        self.assertIn(path, message)
        self.assertRegex(message, needle)
        if not cli:
            return message
        args = [sys.executable, SCRIPT, "--keras", path, "-o", self.path("x.featx")]
        if config:
            args += ["--keras-config", config]
        proc = subprocess.run(args, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)
        self.assertEqual(proc.stderr.strip().splitlines(), [f"export_weights: error: {message}"])
        self.assertFalse(os.path.exists(self.path("x.featx")))
        return message

    def head_model(self, *extra, before=()):
        """Sequential([base, GAP, *extra, head...])."""
        return kw.Model("Sequential", "sequential", [kw.mobilenet_v2(self.net, ROWS), *before, kw.gap(),
                                                     *extra] + kw.head_layers(self.net))

    def test_truncated_files(self):
        def truncate(path, fraction):
            with open(path, "rb") as f:
                data = f.read()
            with open(path, "wb") as f:
                f.write(data[:int(len(data) * fraction)])

        cut = self.path("cut.keras")
        kw.keras_archive(cut, kw.sequential_model(self.net, with_input=True))
        truncate(cut, 0.5)
        self.assert_error(cut, r"not a readable \.keras archive \(zip: File is not a zip file\)",
                          cli=True)
        cut_h5 = self.path("cut.h5")
        kw.keras2_h5(cut_h5, kw.sequential_model(self.net))
        truncate(cut_h5, 0.3)
        self.assert_error(cut_h5, r"not a readable HDF5 file \(Unable to open file \(truncated file",
                          cli=True)
        weights = self.path("cut.weights.h5")
        kw.weights_h5(weights, kw.sequential_model(self.net, with_input=True))
        truncate(weights, 0.5)
        self.assert_error(weights, "not a readable HDF5 file")
        # An archive whose weights member is cut: the zip directory is intact, the HDF5 is not.
        inner = self.path("inner.keras")
        kw.keras_archive(inner, kw.sequential_model(self.net, with_input=True))
        with zipfile.ZipFile(inner) as zf:
            members = {n: zf.read(n) for n in zf.namelist()}
        with zipfile.ZipFile(inner, "w") as zf:
            for n, data in members.items():
                zf.writestr(n, data[:len(data) // 2] if n == "model.weights.h5" else data)
        self.assert_error(inner, "model.weights.h5 in the archive is not a readable HDF5 file")
        with open(self.path("text.keras"), "w") as f:
            f.write("hello")
        self.assert_error(self.path("text.keras"), "not a Keras file")

    def test_wrong_kernel_shape(self):
        model = kw.sequential_model(self.net, with_input=True)
        path = self.path("shape.keras")
        kw.keras_archive(path, model)
        _rewrite_member(path, lambda h5: _replace(h5, "layers/dense_1/vars/0",
                                                  np.zeros((5, 32), np.float32)))
        self.assert_error(path, r"layer 'dense_1' \(Dense\): kernel shape \[5, 32\] is not "
                                r"\[inputs, units=5\]", cli=True)

    def test_unknown_activation(self):
        model = kw.sequential_model(self.net)
        model.layers[-1].config["activation"] = "gelu"
        path = self.path("gelu.h5")
        kw.keras2_h5(path, model)
        self.assert_error(path, r"layer 'dense_1' \(Dense\): activation 'gelu': featx's head runs "
                                r"linear, relu, relu6, softmax", cli=True)

    def test_head_width_is_not_the_feature_width(self):
        net = random_network(0.35, ROWS, seed=13, dense="embedding_layer=32:relu,5:softmax")
        net.dense_head[0].weights = np.zeros((32, 1000), np.float32)
        model = kw.Model("Sequential", "sequential", [kw.mobilenet_v2(self.net, ROWS), kw.gap()]
                         + kw.head_layers(net))
        path = self.path("width.h5")
        kw.keras2_h5(path, model)
        self.assert_error(path, r"layer 'embedding_layer' \(Dense\): kernel shape \[1000, 32\] takes "
                                r"1000 inputs, the layer before it gives 1280", cli=True)

    def test_missing_weight_group(self):
        path = self.path("missing.keras")
        kw.keras_archive(path, kw.sequential_model(self.net, with_input=True))
        _rewrite_member(path, lambda h5: h5.__delitem__("layers/dense_1"))
        self.assert_error(path, r"layer 'dense_1' \(Dense\): no weight group layers/dense_1/vars in "
                                r"the file$", cli=True)
        h5 = self.path("missing.h5")
        kw.keras2_h5(h5, kw.sequential_model(self.net))
        import h5py
        with h5py.File(h5, "r+") as f:
            del f["model_weights/embedding_layer/embedding_layer"]
        self.assert_error(h5, "layer 'embedding_layer' lists weight 'embedding_layer/kernel:0' but has "
                              "no such dataset")

    def test_layers_featx_does_not_run(self):
        cases = {
            "bn": (dict(extra=[kw.Layer("BatchNormalization", "batch_normalization", {"axis": -1})]),
                   r"layer 'batch_normalization' \(BatchNormalization\): after MobileNetV2"),
            "lambda": (dict(extra=[kw.Layer("Lambda", "lambda", {"function": "..."})]),
                       r"layer 'lambda' \(Lambda\): after MobileNetV2"),
            "rescaling_after": (dict(extra=[kw.Layer("Rescaling", "rescaling", {"scale": 2.0})]),
                                r"layer 'rescaling' \(Rescaling\): after MobileNetV2"),
            "max_pool": (dict(extra=[kw.Layer("GlobalMaxPooling2D", "global_max_pooling2d")]),
                         r"GlobalMaxPooling2D\): a second|GlobalMaxPooling2D\)"),
        }
        for name, (kwargs, needle) in cases.items():
            with self.subTest(name):
                path = self.path(f"{name}.h5")
                kw.keras2_h5(path, self.head_model(*kwargs["extra"]))
                self.assert_error(path, needle)

    def test_second_activation_and_unfoldable(self):
        model = self.head_model()
        model.layers.append(kw.Layer("Activation", "activation", {"activation": "tanh"}))
        path = self.path("tanh.h5")
        kw.keras2_h5(path, model)
        self.assert_error(path, r"layer 'activation' \(Activation\): activation 'tanh'")
        model = self.head_model()
        model.layers.append(kw.Layer("Activation", "activation", {"activation": "relu"}))
        kw.keras2_h5(path, model)
        self.assert_error(path, r"relu after dense 'dense_1' which already applies softmax")

    def test_weights_of_another_model(self):
        other = random_network(0.5, ROWS, seed=2, dense="embedding_layer=32:relu,5:softmax")
        weights = self.path("other.weights.h5")
        kw.weights_h5(weights, kw.functional_inline(other))
        config = self.path("config.json")
        model = kw.sequential_model(self.net, with_input=True)
        with open(config, "w") as f:
            f.write(kw.archive_config_json(model))
        self.assert_error(weights, "do not belong to this config", config=config, cli=True)
        # Same structure, other widths: caught by the conv settings against the kernels.
        weights = self.path("wider.weights.h5")
        kw.weights_h5(weights, kw.sequential_model(other, with_input=True))
        self.assert_error(weights, r"layer 'block_1_project' \(Conv2D\): filters 8 but the weights are "
                                   r"\[1, 1, 48, 16\]: the weights do not belong", config=config)

    def test_base_wiring_checked(self):
        model = kw.sequential_model(self.net)
        base = model.layers[0]
        add = next(m for m in base.layers if m.name == "block_2_add")
        add.inputs = ["block_2_project_BN", "block_2_depthwise_relu"]
        path = self.path("wiring.h5")
        kw.keras2_h5(path, model)
        self.assert_error(path, r"layer 'block_2_add' \(Add\): takes .* the standard MobileNetV2 takes")

    def test_output_inside_the_base(self):
        base = kw.mobilenet_v2(self.net, ROWS)
        layers = list(base.layers)
        x = kw._link(layers, kw.gap(), "block_13_expand_relu")
        x = kw._link(layers, kw.head_layers(self.net)[0], x)
        path = self.path("inside.h5")
        kw.keras2_h5(path, kw.Model("Functional", "model", layers, inputs=base.inputs, outputs=[x]))
        self.assert_error(path, r"layer 'block_13_expand_relu' \(ReLU\): the model's output is "
                                r"taken from inside MobileNetV2")

    def test_no_mobilenet(self):
        model = kw.Model("Sequential", "sequential", [kw.input_layer("input_1", ROWS), kw.gap()]
                         + kw.head_layers(self.net))
        path = self.path("none.h5")
        kw.keras2_h5(path, model)
        self.assert_error(path, "no MobileNetV2 base")


def _rewrite_member(path, edit):
    """Apply `edit(h5)` to model.weights.h5 inside the archive at `path`."""
    import io
    import h5py
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    buf = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buf, "r+") as h5:
        edit(h5)
    members["model.weights.h5"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)


def _replace(h5, name, value):
    del h5[name]
    h5.create_dataset(name, data=value)


if __name__ == "__main__":
    unittest.main()
