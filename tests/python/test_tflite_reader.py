import os
import tempfile
import unittest

import numpy as np

import support
from featx_export import reader, tflite_reader, writer

STRIDES = [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1]
CHANNELS = [16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320]


class TfliteReaderTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        support.require_shared()
        cls.tf2 = tflite_reader.read_tflite(support.TF2_MODEL)
        cls.slim = tflite_reader.read_tflite(support.SLIM_MODEL)

    def check_structure(self, net):
        self.assertEqual((net.width_multiplier, net.resolution, net.feature_dim), (1.0, 224, 1280))
        self.assertEqual(net.stem.kernel.shape, (3, 3, 3, 32))
        self.assertEqual([b.stride for b in net.blocks], STRIDES)
        self.assertEqual([b.out_channels for b in net.blocks], CHANNELS)
        self.assertEqual([b.name for b in net.blocks][:3], ["expanded_conv", "expanded_conv_1", "expanded_conv_2"])
        self.assertEqual(net.head.name, "Conv_1")
        self.assertIsNone(net.blocks[0].expand)
        self.assertEqual(net.blocks[5].expand.name, "expanded_conv_5/expand")
        self.assertEqual(net.blocks[5].depthwise.kernel.shape, (3, 3, 192))  # HWC
        self.assertEqual(net.blocks[5].project.kernel.shape, (1, 1, 192, 32))  # HWIO
        for layer in net.layers():
            self.assertIsNone(layer.batch_norm, layer.name)  # folded by the converter
            self.assertIsNotNone(layer.bias, layer.name)
            want = "none" if layer.name.endswith("/project") else "relu6"
            self.assertEqual(layer.activation, want, layer.name)
        self.assertEqual(net.classifier.weights.shape, (1001, 1280))
        self.assertEqual(net.classifier.label_offset, 0)
        self.assertEqual(net.source_format, "tflite")

    def test_tf2_int8_per_channel(self):
        self.check_structure(self.tf2)
        # uint8 input, scale 1/127.5 (float32), zero point 127: internal = 2x - 127/127.5.
        self.assertAlmostEqual(self.tf2.input_scale, 2.0, places=6)
        self.assertAlmostEqual(self.tf2.input_offset, -127 / 127.5, places=6)
        self.assertIn("int8", self.tf2.notes)

    def test_slim_uint8_per_tensor(self):
        self.check_structure(self.slim)
        # uint8 input, scale 1/128, zero point 128: internal = 255x/128 - 1.
        self.assertAlmostEqual(self.slim.input_scale, 255 / 128, places=7)
        self.assertAlmostEqual(self.slim.input_offset, -1.0, places=7)
        self.assertIn("uint8", self.slim.notes)

    def test_dequantised_weights_are_plausible(self):
        for net in (self.tf2, self.slim):
            stem = net.stem.kernel
            self.assertTrue(np.all(np.isfinite(stem)))
            self.assertLess(np.abs(stem).max(), 20.0)
            # Both files have 7-8 all-zero stem filters (dead in training); most are alive.
            self.assertGreaterEqual(np.sum(np.abs(stem).reshape(-1, 32).max(axis=0) > 0), 24)

    def test_featx_round_trip(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "tf2.featx")
            writer.write_featx(self.tf2, path)
            back = reader.read_featx(path)
        for a, b in zip(self.tf2.layers(), back.layers()):
            np.testing.assert_array_equal(a.kernel, b.kernel)
            np.testing.assert_array_equal(a.bias, b.bias)
        self.assertAlmostEqual(back.input_offset, self.tf2.input_offset, places=6)

    def test_not_tflite(self):
        with self.assertRaisesRegex(ValueError, "not a TFLite model"):
            tflite_reader.read_tflite_bytes(b"\x00" * 64, "zeros.bin")
        with open(os.path.join(support.IMAGES, "cat.bmp"), "rb") as f:
            with self.assertRaisesRegex(ValueError, "not a TFLite model"):
                tflite_reader.read_tflite_bytes(f.read(), "cat.bmp")

    def test_damaged_files_raise_value_error(self):
        with open(support.SLIM_MODEL, "rb") as f:
            data = f.read()
        for cut in (8, 100, 10_000, len(data) // 2):  # (the last bytes may be unused padding)
            with self.assertRaises(ValueError, msg=f"cut at {cut}"):
                tflite_reader.read_tflite_bytes(data[:cut], "cut.tflite")
        rng = np.random.default_rng(1)
        for _ in range(40):  # flips in the table area at the front of the file
            damaged = bytearray(data)
            damaged[int(rng.integers(0, 4096))] ^= int(rng.integers(1, 256))
            try:
                tflite_reader.read_tflite_bytes(bytes(damaged), "flipped.tflite")
            except ValueError:
                pass


if __name__ == "__main__":
    unittest.main()
