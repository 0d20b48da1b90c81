"""`featx train-probe` and `featx classify --probe` on real feature vectors.

The task: which of the 7 shared photos a crop comes from (one class per
photo). Training set: 40 augmentations per photo (random crops of 2-30 % of
its area, flips, brightness 0.8-1.2); held out: 20 more per photo from other
seeds, with harder crops (2-8 % of the area) and brightness 0.6-1.4: small
patches that often show little of the subject, so nearest-mean is clearly
imperfect. Written as PNG into a temporary folder; features from
`featx extract` with the TF2 MobileNetV2 (FEATX_TEST_MODELS_DIR's export of
the shared .tflite, or exported here).

Asserted (measured values in docs/probe.md; the bounds leave room for other
PIL or numpy versions changing a few crops):
  - training accuracy: logistic 100 % (converged), nearest-mean >= 0.95;
  - held-out accuracy from `featx classify --probe -m MODEL IMAGES`:
    logistic >= 0.88, nearest-mean <= 0.94, and the probe's error rate at
    most half of nearest-mean's (measured: 0.057 against 0.150, 62 % fewer
    errors; docs/probe.md says why the margin is judged on errors), both far
    above chance (1/7);
  - classify --probe on the held-out vectors prints exactly what it prints
    on the images;
  - the .fxp read here from its documented layout (checksum included): the
    normalisation equals numpy's (1e-12 relative), the nearest-mean weights
    are numpy's unit class means (1e-12), and the logistic W and b equal a
    float64 Newton solve in numpy of the same objective (same normalisation
    and lambda, in the span of the training rows, to a gradient norm of
    1e-12) to 1e-4 relative (max |difference| over max |value|, W and b
    separately); the printed probabilities are numpy's softmax (1e-6);
  - bad inputs: one line "featx: error: <file>: ..." and a non-zero exit.
Run through ctest (cli_probe); skips loudly without the shared folder.
"""

import os
import re
import struct
import sys
import tempfile
import time
import unittest

import numpy as np

import featx_cli
import support
from featx_export.crc32c import crc32c

featx = featx_cli.run

PHOTOS = ("bird.bmp", "cat.bmp", "grace_hopper.bmp", "kite_and_cold.jpg", "parrot.jpg", "pets.jpg", "squat.bmp")
TRAIN_PER_CLASS, HELD_OUT_PER_CLASS = 40, 20
TRAIN_AREA, HELD_OUT_AREA = (0.02, 0.30), (0.02, 0.08)
TRAIN_BRIGHTNESS, HELD_OUT_BRIGHTNESS = (0.8, 1.2), (0.6, 1.4)
PROBE_MIN, MEAN_MAX, ERROR_RATIO_MAX = 0.88, 0.94, 0.5
MEAN_TRAIN_MIN = 0.95
TOL_WEIGHTS, TOL_PROB = 1e-4, 1e-6

_work = None
_model_path = None
_dirs = {}       # "train" / "held_out" -> folder of class folders
_vectors = {}    # "train" / "held_out" -> (N, 1280) .npy path


def _crop(im, rng, area, brightness):
    """A random crop of `area` (fraction of the photo), aspect 3:4 .. 4:3, 224x224."""
    from PIL import Image, ImageEnhance
    w, h = im.size
    a = rng.uniform(*area) * w * h
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    cw, ch = int(round(min(w, np.sqrt(a * aspect)))), int(round(min(h, np.sqrt(a / aspect))))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = im.crop((x0, y0, x0 + cw, y0 + ch)).resize((224, 224), Image.BILINEAR)
    if rng.random() < 0.5:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    return ImageEnhance.Brightness(out).enhance(rng.uniform(*brightness))


def _augment(out_dir, per_class, area, brightness, seed):
    from PIL import Image
    for c, photo in enumerate(PHOTOS):
        folder = os.path.join(out_dir, os.path.splitext(photo)[0])
        os.makedirs(folder)
        with Image.open(os.path.join(support.IMAGES, photo)) as im:
            im = im.convert("RGB")
            for k in range(per_class):
                rng = np.random.default_rng([seed, c, k])  # one stream per image: order-independent
                _crop(im, rng, area, brightness).save(os.path.join(folder, f"{k:02d}.png"))


def setUpModule():
    global _work, _model_path
    support.require_shared()
    for photo in PHOTOS:
        if not os.path.isfile(os.path.join(support.IMAGES, photo)):
            support._loud_skip(f"{photo} not found in {support.IMAGES}")
    try:
        import PIL  # noqa: F401
    except ImportError:
        support._loud_skip("PIL (python3-pil) is not installed")
    featx_cli.binary()
    _work = tempfile.TemporaryDirectory(prefix="featx_check_probe_")
    start = time.time()
    _model_path = featx_cli.tf2_model(_work.name)
    for split, per_class, area, brightness, seed in (
            ("train", TRAIN_PER_CLASS, TRAIN_AREA, TRAIN_BRIGHTNESS, 1),
            ("held_out", HELD_OUT_PER_CLASS, HELD_OUT_AREA, HELD_OUT_BRIGHTNESS, 1001)):
        _dirs[split] = os.path.join(_work.name, split)
        _augment(_dirs[split], per_class, area, brightness, seed)
        _vectors[split] = os.path.join(_work.name, split + ".npy")
        featx("extract", "-m", _model_path, "--recursive", "--quiet", "-o", _vectors[split], _dirs[split])
    sys.stderr.write(f"\n{len(PHOTOS) * (TRAIN_PER_CLASS + HELD_OUT_PER_CLASS)} crops made and extracted "
                     f"in {time.time() - start:.1f} s\n")


def tearDownModule():
    if _work is not None:
        _work.cleanup()


def names_of(vectors):
    with open(vectors + ".names.txt", encoding="utf-8") as f:
        return f.read().splitlines()


def label_of(path):
    return os.path.basename(os.path.dirname(path))


def read_probe(path):
    """The .fxp file, from its layout in docs/probe.md."""
    with open(path, "rb") as f:
        b = f.read()
    assert b[:8] == b"FEATXPRB", "magic"
    assert struct.unpack_from("<I", b, len(b) - 4)[0] == crc32c(b[:-4]), "checksum"
    version, kind, norm, classes = struct.unpack_from("<4I", b, 8)
    dims, samples = struct.unpack_from("<2Q", b, 24)
    lam, scale, logit_scale = struct.unpack_from("<3d", b, 40)
    at, names = 64, []
    for _ in range(classes):
        (n,) = struct.unpack_from("<I", b, at)
        names.append(b[at + 4:at + 4 + n].decode("utf-8"))
        at += 4 + n
    mean = np.frombuffer(b, "<f8", dims, at)
    at += 8 * dims
    w = np.frombuffer(b, "<f8", classes * dims, at).reshape(classes, dims)
    at += 8 * classes * dims
    bias = np.frombuffer(b, "<f8", classes, at)
    at += 8 * classes
    assert at + 4 == len(b), "size"
    return dict(version=version, kind=kind, norm=norm, classes=classes, dims=dims, samples=samples, lam=lam,
                scale=scale, logit_scale=logit_scale, names=names, mean=mean, w=w, b=bias)


def unit_rows(x):
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.where(n > 0, x / np.where(n > 0, n, 1), 0)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def newton_logistic(x, y, classes, lam, tol=1e-12, max_iter=100):
    """argmin (1/n) sum_i CE(softmax(W x_i + b), y_i) + lam/2 |W|^2 in float64.

    The optimum's W rows lie in the span of the rows x_i (its gradient
    condition says so), so W = B Q^T with Q an orthonormal basis of that span:
    Newton with a backtracking line search on (B, b), classes * (rank + 1)
    unknowns instead of classes * (d + 1). The Hessian is singular along
    "all biases + t" (softmax ignores it): that direction is added as a
    rank-1 term; the gradient has no part along it."""
    n = x.shape[0]
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    r = int((s > 1e-10 * s[0]).sum())
    za = np.hstack([x @ vt[:r].T, np.ones((n, 1))])
    p = r + 1
    onehot = np.eye(classes)[y]
    reg = np.r_[np.full(r, lam), 0.0]

    def value_grad(th):
        z = za @ th.T
        m = z.max(axis=1)
        e = np.exp(z - m[:, None])
        se = e.sum(axis=1)
        f = np.mean(np.log(se) + m - z[np.arange(n), y]) + 0.5 * lam * (th[:, :r] ** 2).sum()
        return f, (e / se[:, None] - onehot).T @ za / n + th * reg, e / se[:, None]

    th = np.zeros((classes, p))
    f, g, prob = value_grad(th)
    u = np.zeros(classes * p)
    u[r::p] = 1 / np.sqrt(classes)
    for it in range(max_iter):
        if np.linalg.norm(g) <= tol:
            break
        h = np.zeros((classes * p, classes * p))
        for c in range(classes):
            for e in range(c, classes):
                wgt = prob[:, c] * ((c == e) - prob[:, e]) / n
                blk = za.T @ (za * wgt[:, None])
                h[c * p:(c + 1) * p, e * p:(e + 1) * p] = blk
                h[e * p:(e + 1) * p, c * p:(c + 1) * p] = blk.T
        h += np.diag(np.tile(reg, classes)) + np.outer(u, u)
        step = np.linalg.solve(h, g.ravel()).reshape(classes, p)
        t = 1.0
        while True:
            f2, g2, prob2 = value_grad(th - t * step)
            # Armijo, with f's own rounding allowed: near the optimum a full
            # Newton step may not lower f at double precision, yet it lowers |g|.
            if f2 <= f - 1e-4 * t * float(g.ravel() @ step.ravel()) + 1e-13 * abs(f) or t < 1e-12:
                break
            t *= 0.5
        th, f, g, prob = th - t * step, f2, g2, prob2
    w = th[:, :r] @ vt[:r]
    b = th[:, r] - th[:, r].mean()
    return w, b, np.linalg.norm(g), it


def parse_classify(stdout):
    """{name: [(rank, probability, class index, label), ...]} from classify's output."""
    return dict(featx_cli.parse_ranked(stdout))


def accuracy(ranked):
    return float(np.mean([rows[0][3] == label_of(name) for name, rows in ranked.items()]))


class ProbeTest(unittest.TestCase):
    _trained = {}

    @classmethod
    def trained(cls, kind):
        """(probe path, train-probe's stdout) for `kind`, trained once."""
        if kind not in cls._trained:
            path = os.path.join(_work.name, kind + ".fxp")
            if kind == "logistic":  # one label per row, from a file
                labels = os.path.join(_work.name, "labels.txt")
                with open(labels, "w", encoding="utf-8") as f:
                    f.writelines(label_of(n) + "\n" for n in names_of(_vectors["train"]))
                proc = featx("train-probe", "-o", path, _vectors["train"], labels)
            else:
                proc = featx("train-probe", "-o", path, "--kind", kind, "--labels-from-dirs", _vectors["train"])
            cls._trained[kind] = (path, proc.stdout)
        return cls._trained[kind]

    def test_training_report(self):
        n = len(PHOTOS) * TRAIN_PER_CLASS
        for kind in ("logistic", "mean"):
            path, out = self.trained(kind)
            sys.stderr.write(f"\ntrain-probe --kind {kind}:\n{out}")
            correct = int(re.search(rf"^training accuracy [0-9.]+ \((\d+)/{n}\)$", out, re.M).group(1))
            iterations = int(re.search(r"^iterations (\d+)", out, re.M).group(1))
            if kind == "logistic":
                self.assertEqual(correct, n)  # separable: 1280 dims, 280 rows
                self.assertIn("converged", out)
                self.assertNotIn("NOT converged", out)
                self.assertTrue(0 < iterations < 1000, iterations)
            else:  # the mean of wide and small crops misses some of its own small crops
                self.assertGreaterEqual(correct / n, MEAN_TRAIN_MIN)
                self.assertEqual(iterations, 0)
        # --labels-from-dirs and a labels file give the same classes, so the same bytes.
        again = os.path.join(_work.name, "logistic_from_dirs.fxp")
        featx("train-probe", "-o", again, "--labels-from-dirs", _vectors["train"])
        with open(again, "rb") as a, open(self.trained("logistic")[0], "rb") as b:
            self.assertEqual(a.read(), b.read())

    def test_held_out_accuracy(self):
        acc = {}
        k = str(len(PHOTOS))
        for kind in ("logistic", "mean"):
            path, _ = self.trained(kind)
            images = featx("classify", "--probe", path, "-m", _model_path, "-k", k, "--recursive", _dirs["held_out"])
            ranked = parse_classify(images.stdout)
            self.assertEqual(len(ranked), len(PHOTOS) * HELD_OUT_PER_CLASS)
            for rows in ranked.values():
                self.assertEqual([r[0] for r in rows], list(range(1, len(PHOTOS) + 1)))
            acc[kind] = accuracy(ranked)
            # The same features from the .npy: the same output, byte for byte.
            vectors = featx("classify", "--probe", path, "-k", k, _vectors["held_out"])
            self.assertEqual(vectors.stdout, images.stdout)
        chance = 1 / len(PHOTOS)
        sys.stderr.write(f"\nheld-out accuracy: logistic {acc['logistic']:.4f}, nearest-mean {acc['mean']:.4f}, "
                         f"chance {chance:.4f} ({len(PHOTOS) * HELD_OUT_PER_CLASS} crops)\n")
        self.assertGreaterEqual(acc["logistic"], PROBE_MIN)
        self.assertLessEqual(acc["mean"], MEAN_MAX)
        self.assertLessEqual(1 - acc["logistic"], ERROR_RATIO_MAX * (1 - acc["mean"]))
        self.assertGreaterEqual(acc["mean"], chance + 0.5)

    def test_weights_match_numpy(self):
        x = np.load(_vectors["train"]).astype(np.float64)
        labels = [label_of(n) for n in names_of(_vectors["train"])]
        classes = sorted(set(labels))
        y = np.array([classes.index(lab) for lab in labels])
        u = unit_rows(x)
        held = np.load(_vectors["held_out"]).astype(np.float64)

        m = read_probe(self.trained("mean")[0])
        self.assertEqual((m["version"], m["kind"], m["norm"], m["classes"], m["dims"], m["samples"]),
                         (1, 1, 1, len(classes), x.shape[1], x.shape[0]))
        self.assertEqual(m["names"], classes)
        self.assertTrue(np.all(m["mean"] == 0) and m["scale"] == 1 and np.all(m["b"] == 0))
        means = unit_rows(np.stack([u[y == c].mean(axis=0) for c in range(len(classes))]))
        self.assertLess(np.abs(m["w"] - means).max(), 1e-12)

        p = read_probe(self.trained("logistic")[0])
        self.assertEqual((p["kind"], p["classes"], p["dims"], p["names"]), (2, len(classes), x.shape[1], classes))
        self.assertEqual(p["lam"], 1e-4)  # the documented default
        mu = u.mean(axis=0)
        scale = 1 / np.sqrt(((u - mu) ** 2).sum(axis=1).mean())
        self.assertLess(np.abs(p["mean"] - mu).max(), 1e-12 * np.abs(mu).max())
        self.assertLess(abs(p["scale"] / scale - 1), 1e-12)
        xh = (u - p["mean"]) * p["scale"]
        start = time.time()
        w, b, gnorm, iterations = newton_logistic(xh, y, len(classes), p["lam"])
        err_w = np.abs(p["w"] - w).max() / np.abs(w).max()
        err_b = np.abs(p["b"] - b).max() / np.abs(b).max()
        sys.stderr.write(f"\nnumpy Newton: {iterations} iterations, gradient norm {gnorm:.1e}, "
                         f"{time.time() - start:.1f} s; featx vs numpy: W {err_w:.2e}, b {err_b:.2e} "
                         f"(max |diff| / max |value|), |W|_F {np.linalg.norm(w):.2f}\n")
        self.assertLess(gnorm, 1e-11)
        self.assertLess(err_w, TOL_WEIGHTS)
        self.assertLess(err_b, TOL_WEIGHTS)

        # The printed probabilities are the stored model's softmax.
        for probe in (m, p):
            path = self.trained("mean" if probe is m else "logistic")[0]
            out = parse_classify(featx("classify", "--probe", path, "-k", len(classes), _vectors["held_out"]).stdout)
            expect = softmax(probe["logit_scale"] * (((unit_rows(held) - probe["mean"]) * probe["scale"]) @ probe["w"].T
                                                     + probe["b"]))
            for i, name in enumerate(names_of(_vectors["held_out"])):
                for _, prob, c, label in out[name]:
                    self.assertEqual(label, classes[c])
                    self.assertAlmostEqual(prob, expect[i, c], delta=TOL_PROB)

    def assert_one_line_error(self, proc, path):
        featx_cli.assert_one_line_error(self, proc, prefix=f"featx: error: {path}: ")

    def test_bad_inputs(self):
        work = _work.name
        train = _vectors["train"]
        probe = self.trained("logistic")[0]
        short = os.path.join(work, "short_labels.txt")
        with open(short, "w") as f:
            f.write("a\nb\n")
        self.assert_one_line_error(featx("train-probe", "-o", os.path.join(work, "x.fxp"), train, short, check=False),
                                   short)
        gap = os.path.join(work, "gap_labels.txt")
        with open(gap, "w") as f:
            f.writelines(["cat\n", "\n"] + ["dog\n"] * (len(names_of(train)) - 2))
        self.assert_one_line_error(featx("train-probe", "-o", os.path.join(work, "x.fxp"), train, gap, check=False),
                                   gap + ":2")
        # Names without a folder for --labels-from-dirs.
        flat = os.path.join(work, "flat.npy")
        np.save(flat, np.abs(np.random.default_rng(0).normal(size=(4, 8))).astype(np.float32))
        with open(flat + ".names.txt", "w") as f:
            f.write("a.png\nb.png\nc.png\nd.png\n")
        self.assert_one_line_error(featx("train-probe", "-o", os.path.join(work, "x.fxp"), "--labels-from-dirs",
                                         flat, check=False), flat + ".names.txt:1")
        # A probe of 8-dim vectors against the network's 1280.
        with open(flat + ".names.txt", "w") as f:
            f.write("p/a.png\np/b.png\nq/c.png\nq/d.png\n")
        small = os.path.join(work, "small.fxp")
        featx("train-probe", "-o", small, "--labels-from-dirs", flat)
        image = os.path.join(support.IMAGES, "cat.bmp")
        self.assert_one_line_error(featx("classify", "--probe", small, "-m", _model_path, image, check=False),
                                   _model_path)
        self.assert_one_line_error(featx("classify", "--probe", small, train, check=False), train)
        # Damaged probe files.
        with open(probe, "rb") as f:
            good = f.read()
        for name, data in (("truncated.fxp", good[:100]), ("empty.fxp", b""), ("magic.fxp", b"X" + good[1:]),
                           ("flipped.fxp", good[:200] + bytes([good[200] ^ 1]) + good[201:])):
            bad = os.path.join(work, name)
            with open(bad, "wb") as f:
                f.write(data)
            self.assert_one_line_error(featx("classify", "--probe", bad, _vectors["held_out"], check=False), bad)
        missing = os.path.join(work, "missing.fxp")
        self.assert_one_line_error(featx("classify", "--probe", missing, _vectors["held_out"], check=False), missing)
        # Bad options name themselves (usage errors exit 2).
        proc = featx("train-probe", "-o", os.path.join(work, "x.fxp"), "--l2", "-1", train, check=False)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("--l2", proc.stderr)


if __name__ == "__main__":
    unittest.main()
