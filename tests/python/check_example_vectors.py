"""examples/vectors.py reads featx's files as featx does: its numpy search
and probe predictions equal `featx search` and `featx classify --probe`."""
import importlib.util
import os
import shutil
import subprocess
import tempfile
import unittest

import numpy as np
from PIL import Image

import support

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
spec = importlib.util.spec_from_file_location("vectors", os.path.join(ROOT, "examples", "vectors.py"))
vectors = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vectors)

FEATX = os.environ.get("FEATX_BIN", os.path.join(ROOT, "build", "featx"))
MODELS = os.environ.get("FEATX_TEST_MODELS_DIR", os.path.join(ROOT, "build", "test_models"))
SHARED = support.SHARED


def featx(*args):
    return subprocess.run([FEATX, *map(str, args)], check=True, capture_output=True, text=True).stdout


def ranked(text):
    """featx's `name` / `  rank TAB score TAB index TAB label` blocks: [(name, [(score, index)])]."""
    out = []
    for line in text.splitlines():
        if line.startswith("  "):
            _, score, index, _ = line.strip().split("\t")
            out[-1][1].append((float(score), int(index)))
        else:
            out.append((line, []))
    return out


class ExampleVectorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        support.require_shared()
        cls.work = tempfile.mkdtemp(prefix="featx_example_vectors_")
        photos = ["cat.bmp", "parrot.jpg", "pets.jpg", "bird.bmp"]
        for i, p in enumerate(photos):
            d = os.path.join(cls.work, "lab", os.path.splitext(p)[0])
            os.makedirs(d)
            for j in range(3):  # the same photo at three crops
                crop = os.path.join(d, f"{j}.npy")
                img = np.asarray(Image.open(os.path.join(SHARED, "images", p)).convert("RGB"), dtype=np.float32) / 255
                h, w = img.shape[:2]
                c = 0.06 * j
                np.save(crop, img[int(h * c):h - int(h * c), int(w * c):w - int(w * c)][None].copy())
        cls.model = os.path.join(MODELS, "random_a0.35_r96_s1_c0.featx")
        cls.npy = os.path.join(cls.work, "lab.npy")
        featx("extract", "-q", "-m", cls.model, "--size", "96", "--threads", "1", "-o", cls.npy, "-r",
              os.path.join(cls.work, "lab"))
        cls.fxi = os.path.join(cls.work, "lab.fxi")
        featx("index", "-q", "-o", cls.fxi, cls.npy)
        cls.fxp = os.path.join(cls.work, "lab.fxp")
        # Names are lab/<photo>/<j>.npy[0]: the label is the photo's folder.
        featx("train-probe", "-o", cls.fxp, "--labels-from-dirs", cls.npy)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "work", None):
            shutil.rmtree(cls.work, ignore_errors=True)

    def test_vectors_and_names(self):
        v, names = vectors.load_vectors(self.npy)
        self.assertEqual(v.shape, (12, 1280))
        self.assertEqual(len(names), 12)
        self.assertTrue(names[0].endswith("bird/0.npy[0]"), names[0])

    def test_search_equals_featx_search(self):
        v, _ = vectors.load_vectors(self.npy)
        rows, index_names = vectors.load_index(self.fxi)
        self.assertEqual(rows.shape, v.shape)
        self.assertEqual(index_names, vectors.load_vectors(self.npy)[1])
        scores, order = vectors.search(rows, v, k=5)
        theirs = ranked(featx("search", "-i", self.fxi, "-k", 5, self.npy))
        self.assertEqual(len(theirs), len(v))
        for q, (_, hits) in enumerate(theirs):
            self.assertEqual([i for _, i in hits], list(order[q]), f"query {q}")
            np.testing.assert_allclose([s for s, _ in hits], scores[q], atol=2e-6)

    def test_probe_equals_featx_classify(self):
        v, _ = vectors.load_vectors(self.npy)
        probe = vectors.load_probe(self.fxp)
        self.assertEqual(probe["names"], ["bird", "cat", "parrot", "pets"])
        p = vectors.predict(probe, v)
        theirs = ranked(featx("classify", "--probe", self.fxp, "-k", 4, self.npy))
        for q, (_, hits) in enumerate(theirs):
            for prob, cls in hits:
                self.assertAlmostEqual(prob, p[q, cls], delta=2e-6)
            self.assertEqual(hits[0][1], int(p[q].argmax()))


if __name__ == "__main__":
    unittest.main()
