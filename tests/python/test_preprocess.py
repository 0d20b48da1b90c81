import os
import tempfile
import unittest

import numpy as np
from PIL import Image

import support  # noqa: F401  (import path)
from featx_export import preprocess as P


class ResizeTest(unittest.TestCase):
    def test_upsample_matches_tf(self):
        # tf.image.resize([[0], [1]] as a 2x1 image, [4, 1]) == [0, 0.25, 0.75, 1] (half-pixel centres).
        img = np.array([0.0, 1.0]).reshape(2, 1, 1).repeat(3, axis=2)
        out = P.resize_bilinear(img, 4, 1)[:, 0, 0]
        np.testing.assert_allclose(out, [0.0, 0.25, 0.75, 1.0], atol=1e-7)

    def test_downsample_by_two_averages_pairs(self):
        img = np.arange(16, dtype=np.float64).reshape(1, 16, 1).repeat(3, axis=2)
        out = P.resize_bilinear(img, 1, 8)[0, :, 0]
        np.testing.assert_allclose(out, np.arange(8) * 2 + 0.5)

    def test_identity_and_dtype(self):
        img = np.random.default_rng(0).random((7, 5, 3)).astype(np.float32)
        out = P.resize_bilinear(img, 7, 5)
        self.assertEqual(out.dtype, np.float32)
        np.testing.assert_array_equal(out, img)

    def test_non_integer_ratio_edges(self):
        # 3 -> 5: src = (d + 0.5) * 0.6 - 0.5 = -0.2, 0.4, 1.0, 1.6, 2.2 (clamped at both ends)
        img = np.array([0.0, 10.0, 20.0]).reshape(3, 1, 1).repeat(3, axis=2)
        out = P.resize_bilinear(img, 5, 1)[:, 0, 0]
        np.testing.assert_allclose(out, [0.0, 4.0, 10.0, 16.0, 20.0], atol=1e-5)

    def test_central_crop_like_tf(self):
        img = np.zeros((10, 7, 3))
        self.assertEqual(P.central_crop(img, 0.5).shape, (6, 5, 3))  # starts int(2.5)=2, int(1.75)=1
        self.assertEqual(P.central_crop(img, 0.875).shape, (10, 7, 3))  # starts int(0.625)=0, int(0.4375)=0
        self.assertEqual(P.central_crop(img, 1.0).shape, (10, 7, 3))
        with self.assertRaises(ValueError):
            P.central_crop(img, 0.0)


class DecodeTest(unittest.TestCase):
    def test_grey_rgba_palette(self):
        with tempfile.TemporaryDirectory() as tmp:
            grey = os.path.join(tmp, "g.png")
            Image.fromarray(np.full((4, 6), 51, np.uint8), "L").save(grey)
            rgba = os.path.join(tmp, "a.png")
            arr = np.zeros((3, 2, 4), np.uint8)
            arr[..., 0], arr[..., 3] = 255, 0  # fully transparent red: alpha is dropped, not composited
            Image.fromarray(arr, "RGBA").save(rgba)
            out = P.load_rgb(grey)
            self.assertEqual(out.shape, (4, 6, 3))
            np.testing.assert_allclose(out, 0.2, atol=1e-7)
            out = P.load_rgb(rgba)
            np.testing.assert_allclose(out[..., 0], 1.0)
            np.testing.assert_allclose(out[..., 1:], 0.0)
            bad = os.path.join(tmp, "bad.jpg")
            with open(bad, "wb") as f:
                f.write(b"\xff\xd8 not really")
            with self.assertRaisesRegex(ValueError, "cannot decode"):
                P.load_rgb(bad)

    def test_shared_photo(self):
        support.require_shared()
        out = P.preprocess(os.path.join(support.IMAGES, "cat.bmp"), 193, 161)
        self.assertEqual((out.shape, out.dtype), ((193, 161, 3), np.float32))
        self.assertTrue(0.0 <= out.min() and out.max() <= 1.0)


if __name__ == "__main__":
    unittest.main()
