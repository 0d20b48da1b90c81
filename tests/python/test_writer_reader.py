import os
import struct
import tempfile
import unittest

import numpy as np

import support  # noqa: F401  (import path)
from featx_export import ir, reader, writer
from featx_export.random_model import random_network

from featx.fb.ModelFile import ModelFile
from featx.fb.Network import Network


def _network_with_extras():
    net = random_network(0.35, 96, seed=3, classes=7)
    net.blocks[2].project.bias = np.linspace(-1, 1, net.blocks[2].out_channels).astype(np.float32)
    net.head.activation = "relu"
    net.goldens.append(ir.Golden(name="g", input=np.random.default_rng(0).random((5, 7, 3), dtype=np.float32),
                                 output=np.arange(net.feature_dim, dtype=np.float32), reference="unit test",
                                 max_abs_tolerance=1e-4))
    net.notes = "notes with ünïcode"
    return net


class WriterReaderTest(unittest.TestCase):
    def assert_conv_equal(self, a: ir.Conv, b: ir.Conv):
        self.assertEqual((a.name, a.kind, a.stride, a.activation), (b.name, b.kind, b.stride, b.activation))
        np.testing.assert_array_equal(a.kernel, b.kernel)
        self.assertEqual(a.kernel.shape, b.kernel.shape)
        self.assertEqual(a.bias is None, b.bias is None)
        if a.bias is not None:
            np.testing.assert_array_equal(a.bias, b.bias)
        self.assertEqual(a.batch_norm is None, b.batch_norm is None)
        if a.batch_norm is not None:
            for field in ("gamma", "beta", "moving_mean", "moving_variance"):
                np.testing.assert_array_equal(getattr(a.batch_norm, field), getattr(b.batch_norm, field))
            self.assertAlmostEqual(a.batch_norm.epsilon, b.batch_norm.epsilon, places=9)

    def test_round_trip(self):
        net = _network_with_extras()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.featx")
            writer.write_featx(net, path)
            back = reader.read_featx(path)
        self.assertEqual((back.width_multiplier, back.resolution), (0.35, 96))
        self.assertEqual((back.input_scale, back.input_offset), (2.0, -1.0))
        self.assertEqual(back.notes, net.notes)
        self.assertEqual(back.source_format, "random")
        self.assertEqual(len(back.blocks), 17)
        for a, b in zip(net.layers(), back.layers()):
            self.assert_conv_equal(a, b)
        for a, b in zip(net.blocks, back.blocks):
            self.assertEqual((a.name, a.expansion, a.stride, a.in_channels, a.out_channels, a.residual),
                             (b.name, b.expansion, b.stride, b.in_channels, b.out_channels, b.residual))
        np.testing.assert_array_equal(back.classifier.weights, net.classifier.weights)
        np.testing.assert_array_equal(back.classifier.bias, net.classifier.bias)
        g = back.goldens[0]
        np.testing.assert_array_equal(g.input, net.goldens[0].input)
        np.testing.assert_array_equal(g.output, net.goldens[0].output)
        self.assertEqual((g.name, g.pool, g.reference), ("g", "avg", "unit test"))
        self.assertAlmostEqual(g.max_abs_tolerance, 1e-4, places=9)

    def test_layout_identifier_version_alignment(self):
        data = writer.to_bytes(random_network(0.5, 96, seed=1))
        self.assertEqual(data[4:8], b"FTX1")
        mf = ModelFile.GetRootAs(bytearray(data), 0)
        self.assertEqual(mf.FormatVersion(), ir.FORMAT_VERSION)
        start = mf._tab.Vector(mf._tab.Offset(8))
        self.assertEqual(start % 16, 0, "payload must start 16-byte aligned in the file")
        payload = data[start:start + mf.PayloadLength()]
        net = Network.GetRootAs(bytearray(payload), 0)
        conv = net.Blocks(3).Expand()
        kernel_at = conv._tab.Vector(conv._tab.Offset(18))
        self.assertEqual(kernel_at % 16, 0, "float vectors must be 16-byte aligned in the payload")
        self.assertEqual(net.FeatureLayer(), b"Conv_1")
        self.assertEqual(net.FeatureDim(), 1280)

    def test_corruption_detected(self):
        data = bytearray(writer.to_bytes(random_network(0.35, 96, seed=1)))
        mf = ModelFile.GetRootAs(data, 0)
        start = mf._tab.Vector(mf._tab.Offset(8))
        data[start + mf.PayloadLength() // 2] ^= 0x01
        with self.assertRaisesRegex(ValueError, "checksum mismatch"):
            reader.from_bytes(bytes(data))

    def test_wrong_identifier_and_version(self):
        data = bytearray(writer.to_bytes(random_network(0.35, 96, seed=1)))
        bad = bytearray(data)
        bad[4:8] = b"TFL3"
        with self.assertRaisesRegex(ValueError, "not a featx model"):
            reader.from_bytes(bytes(bad))
        mf = ModelFile.GetRootAs(data, 0)
        version_at = mf._tab.Pos + mf._tab.Offset(4)
        struct.pack_into("<I", data, version_at, ir.FORMAT_VERSION_PREPACKED + 1)
        with self.assertRaisesRegex(ValueError, "format version"):
            reader.from_bytes(bytes(data))

    def test_invalid_network_rejected_before_writing(self):
        net = random_network(0.35, 96, seed=1)
        net.blocks[4].project.kernel = net.blocks[4].project.kernel[:, :, :-1, :]
        with self.assertRaises(ValueError):
            writer.to_bytes(net)

    def test_deterministic_bytes(self):
        a = writer.to_bytes(random_network(0.75, 160, seed=9, classes=3))
        b = writer.to_bytes(random_network(0.75, 160, seed=9, classes=3))
        self.assertEqual(a, b)


if __name__ == "__main__":
    unittest.main()


class DenseHeadRoundTripTest(unittest.TestCase):
    def test_dense_head_and_labels_round_trip(self):
        net = random_network(0.35, 96, seed=4, dense="embedding_layer=16:relu,3:softmax")
        net.dense_head[1].bias = None  # Teachable Machine's last layer has none
        net.labels = ["cat", "dog", "ünïcode"]
        data = writer.to_bytes(net)
        mf = ModelFile.GetRootAs(bytearray(data), 0)
        self.assertEqual(mf.FormatVersion(), ir.FORMAT_VERSION_WITH_HEAD)
        back = reader.from_bytes(data)
        self.assertEqual([(d.name, d.activation) for d in back.dense_head],
                         [("embedding_layer", "relu"), ("dense_1", "softmax")])
        for a, b in zip(net.dense_head, back.dense_head):
            np.testing.assert_array_equal(a.weights, b.weights)
        np.testing.assert_array_equal(net.dense_head[0].bias, back.dense_head[0].bias)
        self.assertIsNone(back.dense_head[1].bias)
        self.assertEqual(back.labels, net.labels)

    def test_model_without_head_stays_version_1(self):
        mf = ModelFile.GetRootAs(bytearray(writer.to_bytes(random_network(0.35, 96, seed=4))), 0)
        self.assertEqual(mf.FormatVersion(), ir.FORMAT_VERSION)

    def test_bad_heads_rejected(self):
        net = random_network(0.35, 96, seed=4, dense="8:relu,2:softmax")
        net.dense_head[1].weights = net.dense_head[1].weights[:, :-1]
        with self.assertRaisesRegex(ValueError, "dense layer dense_1: weights .* do not take the 8"):
            writer.to_bytes(net)
        net = random_network(0.35, 96, seed=4, dense="8:relu")
        net.dense_head[0].activation = "gelu"
        with self.assertRaisesRegex(ValueError, "unknown activation 'gelu'"):
            writer.to_bytes(net)
        net = random_network(0.35, 96, seed=4, dense="8:relu,2:softmax")
        net.labels = ["only one"]
        with self.assertRaisesRegex(ValueError, "1 labels for 2 outputs"):
            writer.to_bytes(net)
        with self.assertRaisesRegex(ValueError, "UNITS"):
            random_network(0.35, 96, seed=4, dense="x:relu")
