"""featx's JPEG decoding, pixel by pixel, against decoders that are not featx.

The tf style must equal `djpeg -dct fast` (TF's JDCT_IFAST + fancy
upsampling) exactly, as 8-bit values and then x * float32(1/255); the keras
style must equal PIL (JDCT_ISLOW) then x / 255. JPEGs are made here with
cjpeg from the shared photos: 4:2:0, 4:2:2, 4:4:0, 4:4:4, greyscale,
progressive, arithmetic-coded, restart markers, odd sizes; plus the shared
.jpg files as they are, CMYK files PIL writes (with and without the Adobe
marker) checked against TF's formula on TurboJPEG's raw CMYK, and broken
files that must be refused with one line naming the file.
Run through ctest (image_jpeg_pixels).
"""

import os
import unittest

import numpy as np
from PIL import Image

import image_refs as R
import support

VARIANTS = {
    "420": ["-sample", "2x2,1x1,1x1"],
    "422": ["-sample", "2x1,1x1,1x1"],
    "440": ["-sample", "1x2,1x1,1x1"],
    "444": ["-sample", "1x1,1x1,1x1"],
    "grey": ["-grayscale"],
    "progressive": ["-progressive"],
    "progressive444": ["-progressive", "-sample", "1x1,1x1,1x1"],
    "arithmetic": ["-arithmetic"],
    "restart": ["-restart", "1", "-optimize"],
    "q100": ["-quality", "100"],
    "q30": ["-quality", "30"],
}


def setUpModule():
    R.require_dump()
    R.require_images()
    R.require_tools("cjpeg", "djpeg")


class Fixtures:
    """JPEGs written once per run into the build tree (never into the repo)."""
    _made = None

    @classmethod
    def files(cls):
        if cls._made is None:
            work = R.work_dir("jpeg_pixels")
            made = {}
            for photo, crop in (("cat.bmp", None), ("grace_hopper.bmp", (333, 251))):
                rgb = R.shared_photo(photo)
                if crop:  # odd sizes: partial MCUs at the right and bottom edges
                    rgb = rgb[:crop[0], :crop[1]]
                ppm = os.path.join(work, photo + ".ppm")
                R.save_ppm(rgb, ppm)
                for name, args in VARIANTS.items():
                    out = os.path.join(work, f"{os.path.splitext(photo)[0]}_{name}.jpg")
                    quality = [] if "-quality" in args else ["-quality", "90"]
                    R.cjpeg(ppm, out, *quality, *args)
                    made[os.path.basename(out)] = out
            for f in sorted(os.listdir(support.IMAGES)):
                if f.lower().endswith((".jpg", ".jpeg")):
                    made[f] = os.path.join(support.IMAGES, f)
            cls._made = made
        return cls._made


class TfStyleTest(unittest.TestCase):
    def test_equals_djpeg_dct_fast(self):
        for name, path in Fixtures.files().items():
            with self.subTest(name):
                ref = R.djpeg(path, "fast")
                got, decoder = R.featx_dump(path, "--decode")
                self.assertIn("JDCT_IFAST", decoder)
                self.assertIn("libjpeg", decoder)
                self.assertEqual(got.shape, ref.shape)
                diff = np.abs(np.rint(got.astype(np.float64) * 255) - ref).max()
                self.assertEqual(diff, 0, f"{name}: 8-bit values differ by up to {diff}")
                np.testing.assert_array_equal(got, R.tf_unit(ref))

    def test_accurate_idct_would_differ(self):
        # The check above can tell IFAST from ISLOW (it would not pass with the wrong one).
        path = Fixtures.files()["cat_420.jpg"]
        got, _ = R.featx_dump(path, "--decode")
        self.assertFalse(np.array_equal(got, R.tf_unit(R.djpeg(path, "int"))))

    def test_scaled_decode_equals_djpeg_scale(self):
        path = Fixtures.files()["cat_420.jpg"]
        for d in (2, 4, 8):
            with self.subTest(scale=d):
                got, decoder = R.featx_dump(path, "--decode", "--scale", str(d))
                self.assertIn(f"1/{d}", decoder)
                np.testing.assert_array_equal(got, R.tf_unit(R.djpeg(path, "fast", "-scale", f"1/{d}")))


class KerasStyleTest(unittest.TestCase):
    def test_equals_pil(self):
        for name, path in Fixtures.files().items():
            with self.subTest(name):
                with Image.open(path) as im:
                    ref = np.asarray(im.convert("RGB"))
                got, decoder = R.featx_dump(path, "--decode", "--style", "keras")
                self.assertIn("JDCT_ISLOW", decoder)
                np.testing.assert_array_equal(got, R.keras_unit(ref))


class CmykTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        work = R.work_dir("jpeg_cmyk")
        rgb = R.shared_photo("cat.bmp")[:200, :300]
        cls.adobe = os.path.join(work, "cmyk_adobe.jpg")
        Image.fromarray(rgb).convert("CMYK").save(cls.adobe, quality=90)
        data = bytearray(R.read_bytes(cls.adobe))
        at = data.index(b"Adobe") - 4  # libjpeg writes the marker (APP14) for CMYK
        assert data[at:at + 2] == b"\xff\xee"
        # The same file without a recognisable Adobe marker (APP14 renamed APP15).
        data[at + 1] = 0xEF
        cls.plain = os.path.join(work, "cmyk_no_adobe.jpg")
        R.write_bytes(cls.plain, data)

    def test_tf_formula(self):
        for path, adobe in ((self.adobe, True), (self.plain, False)):
            with self.subTest(adobe=adobe):
                self.assertEqual(R.has_adobe_marker(path), adobe)
                got, _ = R.featx_dump(path, "--decode")
                np.testing.assert_array_equal(got, R.tf_unit(R.tf_cmyk_decode(path)))

    def test_keras_equals_pil(self):
        for path in (self.adobe, self.plain):
            with self.subTest(path=os.path.basename(path)):
                with Image.open(path) as im:
                    self.assertEqual(im.mode, "CMYK")
                    ref = np.asarray(im.convert("RGB"))
                got, _ = R.featx_dump(path, "--decode", "--style", "keras")
                np.testing.assert_array_equal(got, R.keras_unit(ref))


class BadJpegTest(unittest.TestCase):
    def expect_refused(self, path, part=""):
        proc = R.featx_dump_error(path, "--decode")
        self.assertNotEqual(proc.returncode, 0, path)
        self.assertLess(proc.returncode, 128, f"{path}: crashed")
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertIn(path, lines[0])
        self.assertIn(part, lines[0])
        return lines[0]

    def test_truncated_corrupt_zero_oversized(self):
        work = R.work_dir("jpeg_bad")
        files = Fixtures.files()
        for name in ("cat_420.jpg", "cat_progressive.jpg", "parrot.jpg"):
            data = R.read_bytes(files[name])
            for n in (len(data) // 3, len(data) // 2, len(data) - 100, len(data) - 2, len(data) - 1):
                cut = os.path.join(work, f"cut{n}_{name}")
                R.write_bytes(cut, data[:n])
                self.expect_refused(cut, "truncated JPEG")
        # Corrupt: the frame header claims 12-bit samples; a Huffman table cut to nonsense.
        data = bytearray(R.read_bytes(files["cat_420.jpg"]))
        sof = data.index(b"\xff\xc0")
        bad = data[:]
        bad[sof + 4] = 12
        path = os.path.join(work, "precision.jpg")
        R.write_bytes(path, bad)
        self.expect_refused(path, "libjpeg")
        dht = data.index(b"\xff\xc4")
        bad = data[:]
        bad[dht + 5:dht + 21] = b"\xff" * 16  # code counts overflow the table
        path = os.path.join(work, "huffman.jpg")
        R.write_bytes(path, bad)
        self.expect_refused(path, "libjpeg")
        # Zero height (DNL not supported) and a header past the size limits.
        for name, h, w in (("zero.jpg", 0, 64), ("huge.jpg", 30000, 30000)):
            bad = data[:]
            bad[sof + 5:sof + 9] = bytes([h >> 8, h & 255, w >> 8, w & 255])
            path = os.path.join(work, name)
            R.write_bytes(path, bad)
            line = self.expect_refused(path)
            if name == "huge.jpg":
                self.assertIn("too large", line)
        path = os.path.join(work, "empty.jpg")
        R.write_bytes(path, b"")
        self.expect_refused(path, "empty file")

    def test_too_many_scans(self):
        # A progressive file whose last scan repeats: libjpeg only warns about
        # the bogus progression, so without FEATX_MAX_JPEG_SCANS it would run
        # the whole coefficient pass once per copy.
        data = R.read_bytes(Fixtures.files()["cat_progressive.jpg"])
        last = data.rindex(b"\xff\xda")
        scan = data[last:-2]
        path = os.path.join(R.work_dir("jpeg_scans"), "scans.jpg")
        R.write_bytes(path, data[:-2] + scan * 1001 + data[-2:])
        self.expect_refused(path, "more than 1000 progressive scans")
        R.write_bytes(path, data[:-2] + scan * 20 + data[-2:])  # some repeats: decodes, like TF
        got, _ = R.featx_dump(path, "--decode")
        self.assertEqual(got.shape[:2], (341, 512))

    def test_random_corruption_never_crashes(self):
        work = R.work_dir("jpeg_fuzz")
        rng = np.random.default_rng(11)
        data = R.read_bytes(Fixtures.files()["grace_hopper_progressive.jpg"])
        for t in range(60):
            b = bytearray(data)
            for _ in range(4):
                b[rng.integers(2, len(b))] = rng.integers(0, 256)
            path = os.path.join(work, f"flip{t}.jpg")
            R.write_bytes(path, b)
            proc = R.featx_dump_error(path, "--decode")
            self.assertLess(proc.returncode, 128, f"{path} crashed: {proc.stderr}")
            if proc.returncode != 0:
                self.assertEqual(len(proc.stderr.strip().splitlines()), 1)
                self.assertIn(path, proc.stderr)


if __name__ == "__main__":
    unittest.main()
