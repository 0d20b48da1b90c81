import unittest

import numpy as np

import support  # noqa: F401  (import path)
from featx_export import ir, numpy_reference
from featx_export.random_model import SUPPORTED_ALPHAS, random_network

# Expected channels per width: stem, the 17 block outputs, head (slim/Keras rounding).
EXPECTED = {
    0.35: (16, [8, 8, 8, 16, 16, 16, 24, 24, 24, 24, 32, 32, 32, 56, 56, 56, 112], 1280),
    0.5: (16, [8, 16, 16, 16, 16, 16, 32, 32, 32, 32, 48, 48, 48, 80, 80, 80, 160], 1280),
    0.75: (24, [16, 24, 24, 24, 24, 24, 48, 48, 48, 48, 72, 72, 72, 120, 120, 120, 240], 1280),
    1.0: (32, [16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320], 1280),
    1.3: (40, [24, 32, 32, 40, 40, 40, 80, 80, 80, 80, 128, 128, 128, 208, 208, 208, 416], 1664),
    1.4: (48, [24, 32, 32, 48, 48, 48, 88, 88, 88, 88, 136, 136, 136, 224, 224, 224, 448], 1792),
}


class RandomModelTest(unittest.TestCase):
    def test_shapes_every_width(self):
        for alpha in SUPPORTED_ALPHAS:
            with self.subTest(alpha=alpha):
                net = random_network(alpha, 224, seed=1)
                stem, blocks, head = EXPECTED[alpha]
                self.assertEqual(net.stem.kernel.shape, (3, 3, 3, stem))
                self.assertEqual([b.out_channels for b in net.blocks], blocks)
                self.assertEqual(net.feature_dim, head)
                self.assertEqual([b.name for b in net.blocks][-1], "expanded_conv_16")
                self.assertEqual([b.stride for b in net.blocks],
                                 [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1])
                self.assertEqual(sum(b.residual for b in net.blocks), 10)
                self.assertIsNone(net.blocks[0].expand)
                for b in net.blocks[1:]:
                    self.assertEqual(b.expand.out_channels, 6 * b.in_channels)
                    self.assertEqual(b.depthwise.kernel.shape, (3, 3, 6 * b.in_channels))
                for layer in net.layers():
                    self.assertEqual(layer.kernel.dtype, np.float32)
                    self.assertIsNotNone(layer.batch_norm)
                    self.assertEqual(layer.batch_norm.epsilon, 0.001)
                    want = "none" if layer.name.endswith("/project") else "relu6"
                    self.assertEqual(layer.activation, want, layer.name)

    def test_deterministic(self):
        a, b, c = (random_network(1.0, 96, seed=s, classes=4) for s in (5, 5, 6))
        for la, lb, lc in zip(a.layers(), b.layers(), c.layers()):
            np.testing.assert_array_equal(la.kernel, lb.kernel)
            self.assertFalse(np.array_equal(la.kernel, lc.kernel))
        np.testing.assert_array_equal(a.classifier.weights, b.classifier.weights)
        self.assertEqual(a.classifier.weights.shape, (4, 1280))

    def test_activations_stay_alive(self):
        # Odd, non-square input: every stride-2 layer pads asymmetrically somewhere.
        x = np.random.default_rng(0).uniform(0, 1, (1, 77, 61, 3))
        for alpha in SUPPORTED_ALPHAS:
            with self.subTest(alpha=alpha):
                f = numpy_reference.forward(random_network(alpha, 224, seed=1), x)["features"][0]
                self.assertTrue(np.all(np.isfinite(f)))
                self.assertGreater(np.mean(f > 0), 0.75, "most features must be nonzero")
                self.assertLess(np.mean(f >= 6.0), 0.01, "features must not all clip at 6")
                self.assertTrue(0.1 < np.median(f) < 2.0, np.median(f))

    def test_bad_arguments(self):
        with self.assertRaises(ValueError):
            random_network(0.0, 224, 1)
        with self.assertRaises(ValueError):
            random_network(1.0, 0, 1)
        with self.assertRaises(ValueError):
            random_network(1.0, 224, 1, classes=-1)

    def test_make_divisible(self):
        self.assertEqual(ir.make_divisible(32 * 0.35), 16)
        self.assertEqual(ir.make_divisible(1280 * 1.3), 1664)
        self.assertEqual(ir.make_divisible(1280 * 1.4), 1792)


if __name__ == "__main__":
    unittest.main()
