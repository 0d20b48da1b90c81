"""Keras .h5 reading: files written with h5py in Keras 2's layouts (model.save
and save_weights) from a random network, read back exactly. Whole models with
a head: test_keras_model.py."""

import json
import os
import shutil
import sys
import tempfile
import unittest

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import h5py
except ImportError:  # pragma: no cover - depends on the machine
    h5py = None

from featx_export.keras_h5_reader import read_keras_h5  # noqa: E402
from featx_export.mobilenet_names import keras_variables  # noqa: E402
from featx_export.random_model import random_network  # noqa: E402
from network_compare import assert_same_weights  # noqa: E402

if h5py is not None:
    import keras_writers  # noqa: E402


def write_keras_h5(path, net, full_model=True, chunk_layer_names=0, prefix=""):
    """A Keras 2 style .h5: layer_names on the weights group, weight_names per
    layer, datasets at <layer>/<weight name>:0 (the "/" makes a subgroup).
    Weightless layers (input, activations) are listed too, as Keras does.
    full_model: model.save()'s layout (the config is keras_writers.mobilenet_v2's)."""
    layers = {}
    for name, value in keras_variables(net).items():
        layer = name.split("/")[0]
        layers.setdefault(layer, []).append((f"{prefix}{name}:0", value))
    order = ["input_1"]
    for layer in layers:
        order.append(layer)
        if layer.endswith(("_BN", "_bn")) or layer == "bn_Conv1":
            order.append(layer.replace("_BN", "").replace("bn_", "") + "_relu")
    with h5py.File(path, "w") as f:
        if full_model:
            f.attrs["keras_version"] = b"2.13.1"
            f.attrs["backend"] = b"tensorflow"
            model = keras_writers.mobilenet_v2(net, net.resolution,
                                               include_top=net.classifier is not None)
            f.attrs["model_config"] = json.dumps(keras_writers.serialize(model, "keras2")).encode()
            root = f.create_group("model_weights")
        else:
            root = f
        names = np.array([n.encode() for n in order])
        if chunk_layer_names:
            for i, part in enumerate(np.array_split(names, chunk_layer_names)):
                root.attrs[f"layer_names{i}"] = part
        else:
            root.attrs["layer_names"] = names
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.13.1"
        for layer in order:
            group = root.create_group(layer)
            weights = layers.get(layer, [])
            group.attrs["weight_names"] = np.array([w.encode() for w, _ in weights])
            for weight, value in weights:
                group.create_dataset(weight, data=value)


@unittest.skipIf(h5py is None, "SKIPPED LOUDLY: h5py is not installed (Debian python3-h5py)")
class KerasH5(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.net = random_network(0.5, 160, seed=3, classes=1000)
        cls.no_top = random_network(1.0, 224, seed=4)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def test_full_model_layout(self):
        write_keras_h5(self.path("model.h5"), self.net, full_model=True)
        back = read_keras_h5(self.path("model.h5"), resolution=160)
        assert_same_weights(self, self.net, back)
        self.assertEqual(back.source_format, "keras_h5")
        self.assertEqual(back.resolution, 160)
        self.assertEqual(back.classifier.label_offset, 1)

    def test_weights_only_layout_and_application_file_name(self):
        name = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
        write_keras_h5(self.path(name), self.no_top, full_model=False)
        with h5py.File(self.path(name), "r") as f:
            self.assertIn("layer_names", f.attrs)
            self.assertIn("Conv1/kernel:0", f["Conv1"])
        back = read_keras_h5(self.path(name))
        assert_same_weights(self, self.no_top, back)
        self.assertIsNone(back.classifier)
        self.assertEqual((back.width_multiplier, back.resolution), (1.0, 224))
        self.assertEqual(back.feature_dim, 1280)

    def test_chunked_layer_names_and_nested_weight_names(self):
        write_keras_h5(self.path("chunked.h5"), self.net, full_model=False, chunk_layer_names=3,
                       prefix="mobilenetv2_0.50_160/")
        assert_same_weights(self, self.net, read_keras_h5(self.path("chunked.h5")))

    def test_not_keras_layout(self):
        with h5py.File(self.path("other.h5"), "w") as f:
            f.create_dataset("data", data=np.zeros(3))
        with self.assertRaisesRegex(ValueError, "no layer_names attribute"):
            read_keras_h5(self.path("other.h5"))
        with open(self.path("text.h5"), "w") as f:
            f.write("not hdf5")
        with self.assertRaisesRegex(ValueError, "not a readable HDF5 file"):
            read_keras_h5(self.path("text.h5"))

    def test_missing_weights_named(self):
        write_keras_h5(self.path("model.h5"), self.net)
        with h5py.File(self.path("model.h5"), "r+") as f:
            del f["model_weights/block_7_project_BN/block_7_project_BN/moving_mean:0"]
            f["model_weights/block_7_project_BN"].attrs["weight_names"] = np.array(
                [b"block_7_project_BN/gamma:0", b"block_7_project_BN/beta:0"])
        with self.assertRaisesRegex(ValueError,
                                    "gamma, beta but no block_7_project_BN/moving_mean"):
            read_keras_h5(self.path("model.h5"))


if __name__ == "__main__":
    unittest.main()
