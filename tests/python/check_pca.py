"""`featx pca fit` / `transform` on real feature vectors against numpy.

The vectors: the shared photos, 20 augmented variants each (random crops,
flips, brightness; PIL, written as PNG into a temporary folder), through
`featx extract` with the TF2 MobileNetV2 (FEATX_TEST_MODELS_DIR's export of
the shared .tflite, or exported here). The reference: numpy's SVD of the same
float32 vectors, centred in float64; the model file is read here from its
documented layout (docs/pca.md), checksum included. Bounds: components equal
up to sign to 1e-5, explained variances and ratios to 1e-5 relative,
transformed vectors to 1e-4 (absolute), whitened columns of unit variance.
Both fitting paths: the SVD (N <= D: 140 vectors of 1280) and the covariance
(N > D: the 64 columns of largest variance). Run through ctest (cli_pca);
skips loudly without the shared folder.
"""

import os
import struct
import sys
import tempfile
import unittest

import numpy as np

import featx_cli
import support
from featx_export.crc32c import crc32c

featx = featx_cli.run

VARIANTS = 20
TOL_COMPONENT, TOL_VARIANCE, TOL_TRANSFORM = 1e-5, 1e-5, 1e-4

_work = None
_features = None  # path of the (N, 1280) .npy of the augmented photos
_originals = None  # the photos themselves, not augmented: held-out vectors


def _augment(photos, out_dir):
    from PIL import Image, ImageEnhance
    rng = np.random.default_rng(20240613)
    for name in photos:
        with Image.open(os.path.join(support.IMAGES, name)) as im:
            im = im.convert("RGB")
            w, h = im.size
            for v in range(VARIANTS):
                frac = rng.uniform(0.45, 1.0)
                cw, ch = int(w * frac), int(h * frac)
                x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
                crop = im.crop((x0, y0, x0 + cw, y0 + ch)).resize((256, 256), Image.BILINEAR)
                if rng.random() < 0.5:
                    crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
                crop = ImageEnhance.Brightness(crop).enhance(rng.uniform(0.7, 1.3))
                crop.save(os.path.join(out_dir, f"{os.path.splitext(name)[0]}_{v:02d}.png"))


def setUpModule():
    global _work, _features, _originals
    support.require_shared()
    photos = sorted(f for f in os.listdir(support.IMAGES) if f.lower().endswith((".jpg", ".bmp", ".png")))
    if len(photos) < 5:
        support._loud_skip(f"fewer than 5 photos in {support.IMAGES}")
    featx_cli.binary()
    _work = tempfile.TemporaryDirectory(prefix="featx_check_pca_")
    crops = os.path.join(_work.name, "crops")
    os.mkdir(crops)
    _augment(photos, crops)
    model = featx_cli.tf2_model(_work.name)
    _features = os.path.join(_work.name, "features.npy")
    featx("extract", "-m", model, "--quiet", "-o", _features, crops)
    _originals = os.path.join(_work.name, "originals.npy")
    featx("extract", "-m", model, "--quiet", "-o", _originals, *[os.path.join(support.IMAGES, p) for p in photos])


def tearDownModule():
    if _work is not None:
        _work.cleanup()


def read_pca(path):
    """The model file, parsed from docs/pca.md's layout (not through featx)."""
    with open(path, "rb") as f:
        data = f.read()
    magic, version, flags, d, k, n, total = struct.unpack_from("<8sIIQQQd", data, 0)
    assert magic == b"FEATXPCA" and version == 1, (magic, version)
    assert len(data) == 48 + 8 * (d + k * d + k) + 4, "size"
    assert struct.unpack_from("<I", data, len(data) - 4)[0] == crc32c(data[:-4]), "checksum"
    at = 48
    mean = np.frombuffer(data, "<f8", d, at)
    at += 8 * d
    comps = np.frombuffer(data, "<f8", k * d, at).reshape(k, d)
    at += 8 * k * d
    var = np.frombuffer(data, "<f8", k, at)
    return dict(whiten=bool(flags & 1), covariance=bool(flags & 2), d=d, k=k, n=n, total=total, mean=mean,
                components=comps, variance=var)


def reference(x):
    """numpy: mean, components (rows), explained variances, total variance."""
    x = np.asarray(x, np.float64)
    mean = x.mean(axis=0)
    xc = x - mean
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    n = x.shape[0]
    return mean, vt, s * s / (n - 1), float((xc * xc).sum() / (n - 1))


def parse_fit(stdout):
    """featx pca fit's report -> (ratios, cumulative per component, total)."""
    lines = stdout.splitlines()
    rows = [l[2:].split("\t") for l in lines if l.startswith("  ")]
    total = [l for l in lines if l.startswith("total\t")]
    assert len(total) == 1, stdout
    return (np.array([float(r[1]) for r in rows]), np.array([float(r[2]) for r in rows]),
            float(total[0].split("\t")[1]))


class PcaTest(unittest.TestCase):
    measured = {}

    @classmethod
    def tearDownClass(cls):
        for k, v in sorted(cls.measured.items()):
            sys.stderr.write(f"measured {k}: {v:.3g}\n")

    def fit(self, vectors, *flags):
        model = os.path.join(_work.name, f"m{len(os.listdir(_work.name))}.pca")
        proc = featx("pca", "fit", "-o", model, *flags, vectors)
        return model, proc.stdout

    def transform(self, model, vectors):
        out = os.path.join(_work.name, f"y{len(os.listdir(_work.name))}.npy")
        featx("pca", "transform", "-m", model, "-o", out, vectors)
        y = np.load(out)
        self.assertEqual(y.dtype, np.float32)
        return y, out

    def compare(self, label, vectors, k=None, whiten=False):
        """Fit and transform through featx, against numpy; returns the parsed model."""
        x = np.load(vectors)
        n, d = x.shape
        flags = (["-k", str(k)] if k else []) + (["--whiten"] if whiten else [])
        model, stdout = self.fit(vectors, *flags)
        m = read_pca(model)
        k = k or min(n - 1, d)
        self.assertEqual((m["d"], m["k"], m["n"], m["whiten"], m["covariance"]), (d, k, n, whiten, n > d))
        mean, vt, var, total = reference(x)

        np.testing.assert_allclose(m["mean"], mean, rtol=0, atol=1e-9 * max(1.0, np.abs(mean).max()))
        self.assertLessEqual(abs(m["total"] - total), 1e-9 * total)
        var_err = float(np.max(np.abs(m["variance"] - var[:k]) / var[:k]))
        self.assertLessEqual(var_err, TOL_VARIANCE, f"{label}: explained variance")
        # Components up to sign, and featx's own convention: largest |entry| positive.
        signs = np.sign(np.sum(m["components"] * vt[:k], axis=1))
        comp_err = float(np.max(np.abs(m["components"] - signs[:, None] * vt[:k])))
        self.assertLessEqual(comp_err, TOL_COMPONENT, f"{label}: components")
        c = m["components"]
        self.assertTrue(np.all(c[np.arange(k), np.argmax(np.abs(c), axis=1)] > 0), "sign convention")

        ratios, cumulative, kept = parse_fit(stdout)
        ratio_err = float(np.max(np.abs(ratios - var[:k] / total) / (var[:k] / total)))
        self.assertEqual(len(ratios), k)
        self.assertLessEqual(ratio_err, TOL_VARIANCE, f"{label}: explained-variance ratio")
        np.testing.assert_allclose(cumulative, np.cumsum(var[:k]) / total, rtol=1e-6)
        self.assertAlmostEqual(kept, float(np.sum(var[:k]) / total), places=7)

        y, out = self.transform(model, vectors)
        self.assertEqual(y.shape, (n, k))
        y_ref = (np.asarray(x, np.float64) - mean) @ (signs[:, None] * vt[:k]).T
        if whiten:
            y_ref /= np.sqrt(var[:k])
        y_err = float(np.max(np.abs(y - y_ref)))
        self.assertLessEqual(y_err, TOL_TRANSFORM, f"{label}: transformed vectors")
        tag = f"{label}{' whiten' if whiten else ''} k={k}"
        self.measured[f"{tag}: max |component - numpy|"] = comp_err
        self.measured[f"{tag}: max relative explained-variance error"] = var_err
        self.measured[f"{tag}: max relative ratio error (printed, 9 digits)"] = ratio_err
        self.measured[f"{tag}: max |transformed - numpy|"] = y_err
        self.measured[f"{tag}: max |transformed|"] = float(np.abs(y_ref).max())
        return m, model, y, out

    def test_svd_path_all_components(self):
        # 140 vectors of 1280 dims: N <= D, the SVD of the centred data; all 139 components.
        self.compare("svd (140 x 1280)", _features)

    def test_svd_path_some_components_and_names(self):
        m, model, y, out = self.compare("svd (140 x 1280)", _features, k=16)
        with open(_features + ".names.txt") as a, open(out + ".names.txt") as b:
            self.assertEqual(a.read(), b.read())
        # Held-out vectors (the photos themselves): the stored mean and components.
        held, _ = self.transform(model, _originals)
        ref = (np.load(_originals).astype(np.float64) - m["mean"]) @ m["components"].T
        self.assertLessEqual(float(np.max(np.abs(held - ref))), TOL_TRANSFORM)

    def test_covariance_path(self):
        # N > D: the covariance's eigenvectors. The 64 columns of largest
        # variance (a dead ReLU6 column would give a repeated zero eigenvalue,
        # whose eigenvectors no two solvers agree on).
        x = np.load(_features)
        cols = np.sort(np.argsort(-x.var(axis=0), kind="stable")[:64])
        path = os.path.join(_work.name, "narrow.npy")
        np.save(path, np.ascontiguousarray(x[:, cols]))
        self.compare("covariance (140 x 64)", path)
        self.compare("covariance (140 x 64)", path, k=10)

    def test_whitening(self):
        for vectors, k in ((_features, 24), (None, 32)):
            if vectors is None:  # the covariance path too
                x = np.load(_features)
                vectors = os.path.join(_work.name, "narrow_w.npy")
                np.save(vectors, np.ascontiguousarray(x[:, np.sort(np.argsort(-x.var(axis=0), kind="stable")[:64])]))
            m, _, y, _ = self.compare("svd (140 x 1280)" if vectors == _features else "covariance (140 x 64)",
                                      vectors, k=k, whiten=True)
            var = y.astype(np.float64).var(axis=0, ddof=1)
            err = float(np.max(np.abs(var - 1)))
            self.assertLessEqual(err, 1e-5, "whitened columns have unit variance")
            self.assertLessEqual(float(np.max(np.abs(y.astype(np.float64).mean(axis=0)))), 1e-5)
            self.measured[f"whitened k={k} d={m['d']}: max |column variance - 1|"] = err

    def test_reproducible(self):
        # Run to run, and across OpenMP thread counts: the same bytes.
        files = []
        for threads in ("1", "2", "2"):
            model = os.path.join(_work.name, f"repro{len(files)}.pca")
            featx("pca", "fit", "-o", model, "-k", "32", _features, env=dict(os.environ, OMP_NUM_THREADS=threads))
            with open(model, "rb") as f:
                files.append(f.read())
        self.assertEqual(files[1], files[2], "two runs, same threads")
        self.assertEqual(files[0], files[1], "1 thread vs 2")

    def test_errors_are_one_line(self):
        bad = os.path.join(_work.name, "bad.pca")
        with open(bad, "wb") as f:
            f.write(b"FEATXPCA\x01\x00\x00\x00")
        cases = [
            (["pca", "transform", "-m", bad, "-o", os.path.join(_work.name, "o.npy"), _features], bad, 1),
            (["pca", "transform", "-m", os.path.join(_work.name, "none.pca"), "-o",
              os.path.join(_work.name, "o.npy"), _features], "none.pca", 1),
            (["pca", "fit", "-o", os.path.join(_work.name, "x.pca"), "-k", "140", _features], _features, 2),
            (["pca", "fit", "-o", os.path.join(_work.name, "x.pca"), bad], bad, 1),
            (["pca", "fit", _features], "-o MODEL.pca", 2),
            (["pca", "fit", "-o", os.path.join(_work.name, "x.pca"), "--pool", "avg", _features], "--pool", 2),
            (["pca"], "fit or transform", 2),
        ]
        model, _ = self.fit(_originals, "-k", "3")
        narrow = os.path.join(_work.name, "narrow_e.npy")
        np.save(narrow, np.zeros((4, 10), np.float32))
        cases.append((["pca", "transform", "-m", model, "-o", os.path.join(_work.name, "o.npy"), narrow],
                      "vectors of 10 dims", 2))
        for args, needle, code in cases:
            line = featx_cli.assert_one_line_error(self, featx(*args, check=False), code)
            self.assertIn(needle, line)


if __name__ == "__main__":
    unittest.main()
