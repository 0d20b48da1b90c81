"""TF checkpoint / SavedModel reading without TensorFlow: real TF-written
fixtures from ../shared, corruption handling, and writer -> reader round trips."""

import os
import shutil
import sys
import tempfile
import unittest

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from featx_export import mobilenet_names, sstable  # noqa: E402
from featx_export.checkpoint_writer import (write_checkpoint,  # noqa: E402
                                            write_mobilenet_checkpoint)
from featx_export.crc32c import crc32c  # noqa: E402
from featx_export.hub_reader import read_hub  # noqa: E402
from featx_export.random_model import random_network  # noqa: E402
from featx_export.saved_model_reader import read_saved_model  # noqa: E402
from featx_export.tf_checkpoint import (CheckpointError, open_checkpoint,  # noqa: E402
                                        read_checkpoint)
from network_compare import assert_same_weights  # noqa: E402

SHARED = os.environ.get("FEATX_SHARED_DIR", os.path.join(os.path.dirname(REPO), "shared"))
FIXTURES = os.path.join(SHARED, "fixtures", "tf_saved_models")
TF1 = os.path.join(FIXTURES, "saved_model_half_plus_two_cpu", "00000123")
TF2 = os.path.join(FIXTURES, "saved_model_half_plus_two_tf2_cpu", "00000123")
MKL = os.path.join(FIXTURES, "saved_model_half_plus_two_mkl", "00000123")
HALF_PLUS_TWO = {"a": 0.5, "b": 2.0, "c": 3.0}


def _index(path):
    with open(os.path.join(path, "variables", "variables.index"), "rb") as f:
        return f.read()


@unittest.skipUnless(os.path.isdir(FIXTURES),
                     f"SKIPPED LOUDLY: TF SavedModel fixtures not found at {FIXTURES}; "
                     "set FEATX_SHARED_DIR to the shared/ folder")
class RealTensorFlowFixtures(unittest.TestCase):
    """Files written by TensorFlow itself (tensorflow/serving test data)."""

    def assert_half_plus_two(self, tensors):
        for name, value in HALF_PLUS_TWO.items():
            self.assertEqual(tensors[name].dtype, np.float32)
            self.assertEqual(tensors[name].shape, ())
            self.assertEqual(float(tensors[name]), value, name)

    def test_crc32c_check_value(self):
        self.assertEqual(crc32c(b"123456789"), 0xE3069283)

    def test_tf1_snappy(self):
        self.assertEqual([kind for _, _, kind in sstable.data_blocks(_index(TF1))],
                         [sstable.SNAPPY])
        tensors = read_checkpoint(TF1)
        self.assert_half_plus_two(tensors)
        self.assertEqual(sorted(tensors), ["a", "a2", "b", "c", "c2"])
        self.assertEqual(float(tensors["a2"]), 0.5)
        self.assertEqual(float(tensors["c2"]), 3.0)

    def test_tf2_object_graph(self):
        self.assertEqual([kind for _, _, kind in sstable.data_blocks(_index(TF2))],
                         [sstable.SNAPPY])
        ckpt = open_checkpoint(TF2)
        self.assertIn("_CHECKPOINTABLE_OBJECT_GRAPH", ckpt.keys())
        self.assertEqual(ckpt.names["a/.ATTRIBUTES/VARIABLE_VALUE"], "a")
        self.assert_half_plus_two(read_checkpoint(TF2))
        raw = read_checkpoint(TF2, raw_keys=True)
        self.assertEqual(sorted(raw), [f"{n}/.ATTRIBUTES/VARIABLE_VALUE" for n in "abc"])
        graph = ckpt.read("_CHECKPOINTABLE_OBJECT_GRAPH")
        self.assertEqual(graph.shape, ())
        self.assertIsInstance(graph[()], bytes)

    def test_mkl_conv_kernels(self):
        self.assertEqual([kind for _, _, kind in sstable.data_blocks(_index(MKL))],
                         [sstable.NO_COMPRESSION])
        tensors = read_checkpoint(MKL)
        self.assert_half_plus_two(tensors)
        for layer in ("conv2d", "conv2d_1", "conv2d_2"):
            self.assertEqual(tensors[f"{layer}/kernel"].shape, (1, 1, 1, 1))
            self.assertEqual(tensors[f"{layer}/kernel"].dtype, np.float32)
            self.assertEqual(tensors[f"{layer}/bias"].shape, (1,))
        self.assertAlmostEqual(float(tensors["conv2d/kernel"].ravel()[0]), -0.522396, places=5)

    def test_writer_reproduces_tensorflow_bytes(self):
        # Read a TF-written bundle, write it back: both files come out identical,
        # which pins the writer (and so the round-trip tests) to TF's format.
        for src, compress in ((TF1, True), (MKL, False)):
            prefix = os.path.join(tempfile.mkdtemp(), "variables")
            self.addCleanup(shutil.rmtree, os.path.dirname(prefix))
            write_checkpoint(prefix, read_checkpoint(src), compress=compress)
            for suffix in (".index", ".data-00000-of-00001"):
                with open(prefix + suffix, "rb") as mine, \
                        open(os.path.join(src, "variables", "variables" + suffix), "rb") as tf:
                    self.assertEqual(mine.read(), tf.read(), f"{src} {suffix}")

    def test_paths_accepted(self):
        for path in (TF1, os.path.join(TF1, "variables"),
                     os.path.join(TF1, "variables", "variables"),
                     os.path.join(TF1, "variables", "variables.index")):
            self.assertEqual(float(read_checkpoint(path)["b"]), 2.0, path)

    def test_not_mobilenet_names_what_was_found(self):
        with self.assertRaises(ValueError) as ctx:
            read_saved_model(MKL)
        self.assertIn("conv2d/kernel", str(ctx.exception))
        self.assertIn("MobilenetV2/Conv/weights", str(ctx.exception))

    def _copy(self, src):
        dst = os.path.join(tempfile.mkdtemp(), "model")
        shutil.copytree(src, dst)
        for root, _, files in os.walk(dst):
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
        self.addCleanup(shutil.rmtree, os.path.dirname(dst))
        return dst

    def test_bit_flip_in_data_detected(self):
        for src, key in ((TF1, "b"), (TF2, "b/.ATTRIBUTES/VARIABLE_VALUE"), (MKL, "conv2d/kernel")):
            model = self._copy(src)
            entry = open_checkpoint(model).entries[key]
            data_path = os.path.join(model, "variables", "variables.data-00000-of-00001")
            with open(data_path, "r+b") as f:
                f.seek(entry.offset + 1)
                byte = f.read(1)[0]
                f.seek(entry.offset + 1)
                f.write(bytes([byte ^ 0x10]))
            with self.assertRaises(CheckpointError) as ctx:
                read_checkpoint(model)
            self.assertIn("CRC-32C mismatch", str(ctx.exception))
            self.assertIn(repr(key), str(ctx.exception))

    def test_bit_flip_in_object_graph_detected(self):
        model = self._copy(TF2)
        entry = open_checkpoint(model).entries["_CHECKPOINTABLE_OBJECT_GRAPH"]
        data_path = os.path.join(model, "variables", "variables.data-00000-of-00001")
        with open(data_path, "r+b") as f:
            f.seek(entry.offset + entry.size - 3)
            byte = f.read(1)[0]
            f.seek(entry.offset + entry.size - 3)
            f.write(bytes([byte ^ 0x01]))
        with self.assertRaisesRegex(CheckpointError, "CRC-32C mismatch"):
            open_checkpoint(model)

    def test_bit_flip_in_index_detected(self):
        model = self._copy(TF1)
        path = os.path.join(model, "variables", "variables.index")
        with open(path, "r+b") as f:
            f.seek(20)
            byte = f.read(1)[0]
            f.seek(20)
            f.write(bytes([byte ^ 0x04]))
        with self.assertRaisesRegex(CheckpointError, "CRC-32C mismatch"):
            read_checkpoint(model)

    def test_truncated_index_rejected(self):
        for src in (TF1, TF2, MKL):
            data = _index(src)
            for cut in (1, 8, 48, len(data) - 10, len(data) - 1):
                model = self._copy(src)
                with open(os.path.join(model, "variables", "variables.index"), "wb") as f:
                    f.write(data[:len(data) - cut])
                with self.assertRaises(CheckpointError, msg=f"cut {cut}") as ctx:
                    read_checkpoint(model)
                self.assertRegex(str(ctx.exception), "truncated|magic|CRC|footer")

    def test_truncated_data_rejected(self):
        model = self._copy(MKL)
        data_path = os.path.join(model, "variables", "variables.data-00000-of-00001")
        with open(data_path, "rb") as f:
            data = f.read()
        with open(data_path, "wb") as f:
            f.write(data[:-2])
        with self.assertRaisesRegex(CheckpointError, "truncated data file"):
            read_checkpoint(model)


class CheckpointRoundTrip(unittest.TestCase):
    """checkpoint_writer -> tf_checkpoint / saved_model_reader on MobileNetV2."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.net = random_network(0.35, 224, seed=7, classes=1001)
        cls.keras_net = random_network(0.35, 224, seed=8, classes=1000)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def saved_model(self, name, net, **kwargs):
        model = os.path.join(self.tmp, name)
        write_mobilenet_checkpoint(os.path.join(model, "variables", "variables"), net, **kwargs)
        with open(os.path.join(model, "saved_model.pb"), "wb"):
            pass  # the reader never parses the graph; only its presence marks a SavedModel
        return model

    def test_slim_and_keras_names_every_variant(self):
        for names, net in (("slim", self.net), ("keras", self.keras_net)):
            for tf2 in (False, True):
                for compress in (False, True):
                    with self.subTest(names=names, tf2=tf2, compress=compress):
                        model = self.saved_model(f"{names}_{tf2}_{compress}", net, names=names,
                                                 tf2=tf2, compress=compress)
                        index = os.path.join(model, "variables", "variables.index")
                        with open(index, "rb") as f:
                            kinds = {k for _, _, k in sstable.data_blocks(f.read())}
                        self.assertEqual(kinds, {sstable.SNAPPY} if compress
                                         else {sstable.NO_COMPRESSION})
                        back = read_saved_model(model)
                        assert_same_weights(self, net, back)
                        self.assertEqual(back.source_format, "saved_model")
                        self.assertIn(f"{names} variable names", back.notes)
                        keys = open_checkpoint(model).keys()
                        self.assertEqual(any(k.endswith("/.ATTRIBUTES/VARIABLE_VALUE")
                                             for k in keys), tf2)

    def test_classifier_layouts(self):
        slim = mobilenet_names.slim_variables(self.net)
        self.assertEqual(slim["MobilenetV2/Logits/Conv2d_1c_1x1/weights"].shape,
                         (1, 1, self.net.feature_dim, 1001))
        keras = mobilenet_names.keras_variables(self.keras_net)
        self.assertEqual(keras["predictions/kernel"].shape, (self.keras_net.feature_dim, 1000))
        self.assertEqual(keras["block_3_depthwise/depthwise_kernel"].shape[3], 1)
        back = mobilenet_names.network_from_variables(keras)
        self.assertEqual(back.classifier.label_offset, 1)  # 1000 classes: no background row
        self.assertEqual(mobilenet_names.network_from_variables(slim).classifier.label_offset, 0)

    def test_tf2_names_come_from_object_graph(self):
        # Hub-style TF2 exports key variables by position ("variables/17"), so
        # only the graph's full_name says which tensor is which.
        variables = mobilenet_names.slim_variables(self.net)
        names = sorted(variables)[::-1]
        paths = {n: ["variables", str(i)] for i, n in enumerate(names)}
        prefix = os.path.join(self.tmp, "indexed", "variables")
        write_checkpoint(prefix, variables, tf2=True, object_paths=paths, compress=True)
        raw = read_checkpoint(prefix, raw_keys=True)
        self.assertIn("variables/0/.ATTRIBUTES/VARIABLE_VALUE", raw)
        assert_same_weights(self, self.net, read_saved_model(prefix))

    def test_prefixed_names_and_shards(self):
        model = self.saved_model("module", self.net, name_prefix="module/", num_shards=3)
        self.assertTrue(os.path.isfile(os.path.join(
            model, "variables", "variables.data-00002-of-00003")))
        self.assertTrue(all(k.startswith("module/") for k in open_checkpoint(model).keys()))
        assert_same_weights(self, self.net, read_saved_model(model))
        keras = mobilenet_names.keras_variables(self.keras_net)
        prefix = os.path.join(self.tmp, "nested", "ckpt")
        write_checkpoint(prefix, {f"mobilenetv2_0.35_224/{k}:0": v for k, v in keras.items()})
        assert_same_weights(self, self.keras_net, read_saved_model(prefix))

    def test_every_standard_width_and_resolution_from_name(self):
        for alpha in mobilenet_names.STANDARD_WIDTHS:
            net = random_network(alpha, 224, seed=1)
            back = mobilenet_names.network_from_variables(mobilenet_names.keras_variables(net))
            self.assertEqual(back.width_multiplier, alpha)
            self.assertEqual(back.feature_dim, net.feature_dim)
        model = self.saved_model("mobilenet_v2_035_160", self.net)
        back = read_saved_model(model)
        self.assertEqual((back.width_multiplier, back.resolution), (0.35, 160))
        self.assertEqual(read_saved_model(model, resolution=96).resolution, 96)

    def test_many_small_blocks_and_dtypes(self):
        prefix = os.path.join(self.tmp, "dtypes", "ckpt")
        tensors = {
            "f32": np.arange(12, dtype=np.float32).reshape(3, 4),
            "f64": np.linspace(-1, 1, 7),
            "i32": np.array([-5, 0, 7], dtype=np.int32),
            "i64": np.array([[-(1 << 40)], [3]], dtype=np.int64),
            "scalar": np.array(1.5, dtype=np.float32),
            "empty": np.zeros((0, 3), dtype=np.float32),
        }
        tensors.update({f"many/{i:04d}": np.full(2, i, np.float32) for i in range(300)})
        for compress in (False, True):
            write_checkpoint(prefix, tensors, compress=compress, block_size=256)
            with open(prefix + ".index", "rb") as f:
                self.assertGreater(len(sstable.data_blocks(f.read())), 5)
            back = read_checkpoint(prefix)
            self.assertEqual(sorted(back), sorted(tensors))
            for name, value in tensors.items():
                self.assertEqual(back[name].dtype, value.dtype, name)
                self.assertTrue(np.array_equal(back[name], value), name)

    def test_missing_and_misshapen_variables(self):
        variables = mobilenet_names.slim_variables(self.net)
        broken = dict(variables)
        del broken["MobilenetV2/expanded_conv_5/project/BatchNorm/moving_variance"]
        with self.assertRaisesRegex(ValueError, "moving_variance"):
            mobilenet_names.network_from_variables(broken)
        broken = dict(variables)
        del broken["MobilenetV2/expanded_conv_16/project/weights"]
        with self.assertRaisesRegex(ValueError, "17 blocks; found 16"):
            mobilenet_names.network_from_variables(broken)
        broken = dict(variables)
        broken["MobilenetV2/Conv_1/weights"] = broken["MobilenetV2/Conv_1/weights"][0]
        with self.assertRaisesRegex(ValueError, "MobilenetV2/Conv_1/weights"):
            mobilenet_names.network_from_variables(broken)
        broken = dict(variables)
        broken["MobilenetV2/expanded_conv_3/depthwise/BatchNorm/gamma"] = np.ones(3, np.float32)
        with self.assertRaisesRegex(ValueError, "expanded_conv_3/depthwise/BatchNorm/gamma"):
            mobilenet_names.network_from_variables(broken)
        with self.assertRaisesRegex(ValueError, "found 2 variables: x, y"):
            mobilenet_names.network_from_variables({"x": np.zeros(1), "y": np.zeros(1)})

    def test_hub_local_directory_and_missing_tensorflow(self):
        model = self.saved_model("hub_dir", self.net)
        net = read_hub(model)
        self.assertEqual(net.source_format, "hub")
        assert_same_weights(self, self.net, net)
        try:
            import tensorflow_hub  # noqa: F401
            return  # a machine with TF would try to download
        except ImportError:
            pass
        with self.assertRaises(RuntimeError) as ctx:
            read_hub("https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5")
        self.assertIn("--hub needs tensorflow and tensorflow_hub", str(ctx.exception))
        self.assertIn("--saved-model", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
