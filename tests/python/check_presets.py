"""featx's preprocessing presets, pixel by pixel, against references that are not featx.

- keras: keras.utils.load_img(path, target_size) / 255 through PIL itself;
- tf and tf-antialias: djpeg -dct fast pixels (TF's decode) through float32
  numpy emulations of TF's ResizeBilinear and ScaleAndTranslate kernels;
- fast: djpeg -dct fast -scale 1/d, then the same bilinear emulation.
Expected: equal bit for bit (the emulations do each float32 operation in
TF's order, and this build does not fuse multiply-adds). Run through ctest
(image_presets).
"""

import os
import unittest

import numpy as np
from PIL import Image

import image_refs as R
import support

SIZES = [(224, 224), (193, 161), (96, 128), (600, 500), (7, 300), (1, 1)]


def setUpModule():
    R.require_dump()
    R.require_images()
    R.require_tools("cjpeg", "djpeg")


class Files:
    _made = None

    @classmethod
    def get(cls):
        if cls._made is None:
            work = R.work_dir("presets")
            made = {f: os.path.join(support.IMAGES, f) for f in ("parrot.jpg", "pets.jpg", "kite_and_cold.jpg",
                                                                  "cat.bmp")}
            rgb = R.shared_photo("grace_hopper.bmp")[:401, :333]
            ppm = os.path.join(work, "grace.ppm")
            R.save_ppm(rgb, ppm)
            for name, args in (("grace_420.jpg", ["-sample", "2x2,1x1,1x1"]), ("grace_grey.jpg", ["-grayscale"]),
                               ("grace_prog.jpg", ["-progressive"])):
                made[name] = os.path.join(work, name)
                R.cjpeg(ppm, made[name], "-quality", "85", *args)
            made["grace.png"] = os.path.join(work, "grace.png")
            Image.fromarray(rgb).save(made["grace.png"])
            made["cmyk.jpg"] = os.path.join(work, "cmyk.jpg")
            Image.fromarray(rgb).convert("CMYK").save(made["cmyk.jpg"], quality=90)
            cls._made = made
        return cls._made


def tf_decoded(path: str) -> np.ndarray:
    """What tf.io.decode_image + convert_image_dtype give (JPEG: djpeg -dct fast)."""
    if path.endswith("cmyk.jpg"):
        return R.tf_unit(R.tf_cmyk_decode(path))
    if path.lower().endswith(".jpg"):
        return R.tf_unit(R.djpeg(path, "fast"))
    with Image.open(path) as im:  # lossless formats: every decoder agrees
        return R.tf_unit(np.asarray(im.convert("RGB")))


class KerasPresetTest(unittest.TestCase):
    def test_equals_load_img(self):
        worst = 0.0
        for name, path in Files.get().items():
            for h, w in SIZES:
                with self.subTest(file=name, size=(h, w)):
                    got, decoder = R.featx_dump(path, "--preset", "keras", "--size", f"{h}x{w}")
                    ref = R.keras_load_img(path, h, w)
                    self.assertEqual(got.shape, ref.shape)
                    worst = max(worst, float(np.abs(got - ref).max()))
                    np.testing.assert_array_equal(got, ref)
                    if name.endswith(".jpg"):
                        self.assertIn("JDCT_ISLOW", decoder)
        print(f"\nkeras preset vs PIL load_img: max |diff| {worst}")

    def test_crop_comes_before_the_resize(self):
        path = Files.get()["parrot.jpg"]
        got, _ = R.featx_dump(path, "--preset", "keras", "--size", "224x224", "--crop", "0.875")
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            top, left = int((h - h * 0.875) / 2), int((w - w * 0.875) / 2)
            im = im.crop((left, top, w - left, h - top)).resize((224, 224), Image.NEAREST)
            np.testing.assert_array_equal(got, R.keras_unit(np.asarray(im)))


class TfPresetsTest(unittest.TestCase):
    def check(self, preset, resize, sizes=SIZES, crops=(1.0, 0.875)):
        worst = 0.0
        for name, path in Files.get().items():
            decoded = tf_decoded(path)
            for crop in crops:
                cropped = R.tf_central_crop(decoded, crop)
                for h, w in sizes:
                    with self.subTest(file=name, size=(h, w), crop=crop):
                        got, _ = R.featx_dump(path, "--preset", preset, "--size", f"{h}x{w}", "--crop", str(crop))
                        ref = resize(cropped, h, w)
                        self.assertEqual(got.shape, ref.shape)
                        worst = max(worst, float(np.abs(got - ref).max()))
                        np.testing.assert_array_equal(got, ref)
        print(f"\n{preset} preset vs numpy emulation of TF: max |diff| {worst}")

    def test_tf_equals_resize_bilinear_emulation(self):
        self.check("tf", R.tf_resize_bilinear)

    def test_tf_antialias_equals_scale_and_translate_emulation(self):
        self.check("tf-antialias", R.tf_resize_antialias, sizes=[(224, 224), (193, 161), (600, 500), (7, 300)],
                   crops=(1.0,))

    def test_fast_equals_scaled_djpeg_then_bilinear(self):
        work = R.work_dir("presets_fast")
        rgb = R.shared_photo("cat.bmp")
        big = np.asarray(Image.fromarray(rgb).resize((2048, 1364), Image.BICUBIC))
        path = os.path.join(work, "big.jpg")
        ppm = os.path.join(work, "big.ppm")
        R.save_ppm(big, ppm)
        R.cjpeg(ppm, path, "-quality", "90")
        cases = [(path, 224, 224, 1.0, 2), (path, 96, 96, 1.0, 4), (path, 64, 64, 1.0, 8),
                 (path, 224, 224, 0.5, 1), (path, 160, 160, 0.5, 2), (Files.get()["kite_and_cold.jpg"], 224, 224, 1.0, 2),
                 (Files.get()["parrot.jpg"], 224, 224, 1.0, 1), (Files.get()["cat.bmp"], 224, 224, 1.0, 1)]
        for p, h, w, crop, d in cases:
            with self.subTest(file=os.path.basename(p), size=(h, w), crop=crop):
                got, decoder = R.featx_dump(p, "--preset", "fast", "--size", f"{h}x{w}", "--crop", str(crop))
                if p.endswith(".jpg"):
                    self.assertEqual(f"1/{d}" in decoder, d > 1, decoder)
                    pixels = R.tf_unit(R.djpeg(p, "fast", *(["-scale", f"1/{d}"] if d > 1 else [])))
                else:
                    pixels = tf_decoded(p)
                ref = R.tf_resize_bilinear(R.tf_central_crop(pixels, crop), h, w)
                np.testing.assert_array_equal(got, ref)


if __name__ == "__main__":
    unittest.main()
