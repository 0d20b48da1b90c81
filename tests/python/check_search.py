"""`featx index` and `featx search` on real features: the shared photos and
augmented variants of them (crops and flips made with PIL in a temp dir).

The index holds each photo, its mirror image and a 90 % central crop; the
queries are other crops (and a flipped crop) of the same photos, never in
the index. Asserted: each query's nearest neighbour is a variant of its own
photo; the scores equal numpy's float64 cosine similarities to 1e-5 and the
order numpy's argsort (ties within 1e-6 aside); image queries (extracted
by featx search) and vector queries (a .npy from featx extract) give the
same lines; the contact sheet names every query and neighbour and embeds
their thumbnails; bad files and usage get one-line errors. With FAISS built
(FEATX_HAVE_FAISS=ON), recall@10 of IVF-Flat and HNSW against exact search
is printed and bounded. Run through ctest (cli_search), about 10 s.
"""

import html
import os
import sys
import tempfile
import unittest

import numpy as np

import support
from featx_cli import assert_one_line_error, parse_ranked as parse_search, run, tf2_model

PHOTOS = ("bird.bmp", "cat.bmp", "grace_hopper.bmp", "kite_and_cold.jpg", "parrot.jpg", "pets.jpg", "squat.bmp")
K = 10
SCORE_TOL = 1e-5
TIE = 1e-6


def faiss_built():
    return os.environ.get("FEATX_HAVE_FAISS", "").upper() in ("ON", "1", "TRUE", "YES")


def unit(x):
    x = np.asarray(x, np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1)


class Fixture:
    tmp = None

    @classmethod
    def setup(cls):
        if cls.tmp is not None:
            return
        if not os.path.isdir(support.IMAGES):
            support._loud_skip(f"shared images not found at {support.IMAGES} (set FEATX_SHARED_DIR)")
        from PIL import Image, ImageOps
        cls._dir = tempfile.TemporaryDirectory(prefix="featx_search_")
        cls.tmp = cls._dir.name
        cls.family = {}  # image path -> source photo
        cls.db_files, cls.query_files = [], []

        def save(img, photo, tag, dest):
            path = os.path.join(cls.tmp, f"{os.path.splitext(photo)[0]}_{tag}.png")
            img.save(path)
            cls.family[path] = photo
            dest.append(path)

        def crop(img, fraction, where):
            w, h = img.size
            cw, ch = int(w * fraction), int(h * fraction)
            x0 = {"tl": 0, "c": (w - cw) // 2, "br": w - cw}[where]
            y0 = {"tl": 0, "c": (h - ch) // 2, "br": h - ch}[where]
            return img.crop((x0, y0, x0 + cw, y0 + ch))

        for photo in PHOTOS:
            src = os.path.join(support.IMAGES, photo)
            cls.family[src] = photo
            cls.db_files.append(src)
            img = Image.open(src).convert("RGB")
            save(ImageOps.mirror(img), photo, "flip", cls.db_files)
            save(crop(img, 0.9, "c"), photo, "crop90", cls.db_files)
            save(crop(img, 0.8, "tl"), photo, "crop80tl", cls.query_files)
            save(ImageOps.mirror(crop(img, 0.8, "br")), photo, "crop80br_flip", cls.query_files)
            save(crop(img, 0.75, "c"), photo, "crop75", cls.query_files)
        cls.model = tf2_model(cls.tmp)
        cls.db_npy = os.path.join(cls.tmp, "db.npy")
        cls.q_npy = os.path.join(cls.tmp, "queries.npy")
        run("extract", "-m", cls.model, "--quiet", "-o", cls.db_npy, *cls.db_files)
        run("extract", "-m", cls.model, "--quiet", "-o", cls.q_npy, *cls.query_files)
        cls.db = np.load(cls.db_npy)
        cls.q = np.load(cls.q_npy)
        cls.index = os.path.join(cls.tmp, "db.fxi")
        run("index", "-o", cls.index, cls.db_npy, "--quiet")
        # float64 cosine similarities: the reference for scores and order.
        cls.cos = unit(cls.q) @ unit(cls.db).T


def setUpModule():
    Fixture.setup()


class SearchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        f = Fixture
        cls.sheet = os.path.join(f.tmp, "sheet.html")
        cls.by_image = parse_search(run("search", "-i", f.index, "-k", K, "-m", f.model, "--html", cls.sheet,
                                        *f.query_files).stdout)
        cls.by_vector = parse_search(run("search", "-i", f.index, "-k", K, f.q_npy).stdout)

    def test_nearest_neighbour_is_a_variant_of_the_same_photo(self):
        f = Fixture
        self.assertEqual([q for q, _ in self.by_image], f.query_files)
        for query, hits in self.by_image:
            self.assertEqual(len(hits), K)
            top = hits[0][3]
            self.assertEqual(f.family[top], f.family[query], f"{query}: nearest is {top}")
        # The best three are the photo's three variants in the index (measured: every query).
        whole = sum({f.family[h[3]] for h in hits[:3]} == {f.family[q]} for q, hits in self.by_image)
        sys.stderr.write(f"\nqueries whose 3 nearest are all their photo's variants: {whole} of {len(self.by_image)}\n")
        self.assertEqual(whole, len(self.by_image))

    def test_scores_and_order_equal_numpys(self):
        f = Fixture
        worst = 0.0
        for qi, (query, hits) in enumerate(self.by_image):
            cos = f.cos[qi]
            order = np.argsort(-cos, kind="stable")[:K]
            got = [h[2] for h in hits]
            self.assertEqual([h[0] for h in hits], list(range(1, K + 1)))
            for rank, (_, score, index, name) in enumerate(hits):
                worst = max(worst, abs(score - cos[index]))
                self.assertAlmostEqual(score, cos[index], delta=SCORE_TOL, msg=f"{query} rank {rank + 1}")
                self.assertEqual(name, f.db_files[index])
                if index != order[rank]:  # only a near-tie may swap places
                    self.assertLess(abs(cos[index] - cos[order[rank]]), TIE, f"{query} rank {rank + 1}")
            self.assertEqual(sorted(got), sorted(order.tolist()), query)
        sys.stderr.write(f"\nmax |featx score - numpy cosine| = {worst:.2e}\n")

    def test_vector_queries_equal_image_queries(self):
        self.assertEqual(self.by_vector, self.by_image)

    def test_contact_sheet_names_every_query_and_neighbour(self):
        f = Fixture
        self.assertTrue(os.path.isfile(self.sheet))
        with open(self.sheet, encoding="utf-8") as fh:
            text = fh.read()
        names = {q for q, _ in self.by_image} | {h[3] for _, hits in self.by_image for h in hits}
        for name in names:
            self.assertIn(html.escape(name), text)
        # A thumbnail per query and per neighbour shown.
        cells = len(self.by_image) * (K + 1)
        self.assertEqual(text.count('src="data:image/jpeg;base64,'), cells)
        self.assertNotIn("no image", text)
        self.assertEqual(text.count("<section>"), len(f.query_files))

    def test_k_larger_than_the_index_and_a_single_vector(self):
        f = Fixture
        one = os.path.join(f.tmp, "one.npy")
        np.save(one, f.q[4])  # (D,): one query named by its path
        res = parse_search(run("search", "-i", f.index, "-k", 1000, one).stdout)
        self.assertEqual(len(res), 1)
        self.assertEqual(res[0][0], one)
        self.assertEqual(len(res[0][1]), len(f.db_files))
        self.assertEqual([h[2] for h in res[0][1]][:K], [h[2] for h in self.by_image[4][1]])


class ErrorTest(unittest.TestCase):
    def error(self, code, *args):
        return assert_one_line_error(self, run(*args, check=False), code)

    def test_bad_files_and_usage(self):
        f = Fixture
        with open(f.index, "rb") as fh:
            data = fh.read()
        cut = os.path.join(f.tmp, "cut.fxi")
        with open(cut, "wb") as fh:
            fh.write(data[:1000])
        self.assertIn(f"{cut}: truncated vectors", self.error(1, "search", "-i", cut, f.q_npy))
        junk = os.path.join(f.tmp, "junk.fxi")
        with open(junk, "wb") as fh:
            fh.write(b"not an index at all, but long enough for a header........................")
        self.assertIn(f"{junk}: not a featx index", self.error(1, "search", "-i", junk, f.q_npy))
        self.assertIn("needs -m MODEL", self.error(2, "search", "-i", f.index, f.query_files[0]))
        other = os.path.join(f.tmp, "other.npy")
        np.save(other, np.ones((2, 7), np.float32))
        self.assertIn(f"{other}: vectors of 7 dimensions", self.error(2, "search", "-i", f.index, other))
        self.assertIn(f"{other}: vectors of 7 dimensions, {f.db_npy} has 1280",
                      self.error(2, "index", "-o", os.path.join(f.tmp, "x.fxi"), f.db_npy, other))
        nan = os.path.join(f.tmp, "nan.npy")
        bad = f.db[:3].copy()
        bad[2, 9] = np.nan
        np.save(nan, bad)
        self.assertIn(f"{nan}: row 2, dimension 9: non-finite", self.error(2, "index", "-o",
                                                                           os.path.join(f.tmp, "y.fxi"), nan))
        self.assertFalse(os.path.exists(os.path.join(f.tmp, "y.fxi.part")))
        self.assertIn("needs -i INDEX.fxi", self.error(2, "search", f.q_npy))
        if faiss_built():
            self.assertIn(f"{f.index}.faiss: no such file", self.error(1, "search", "-i", f.index, "--faiss", f.q_npy))
        else:
            self.assertIn("built without FAISS", self.error(2, "search", "-i", f.index, "--faiss", f.q_npy))


class FaissTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not faiss_built():
            support._loud_skip("featx was built without FAISS (FEATX_HAVE_FAISS is not ON): no recall check")

    def recall(self, kind, build_flags, search_flags, bound):
        f = Fixture
        index = os.path.join(f.tmp, f"ann_{kind}.fxi")
        run("index", "-o", index, "--faiss", kind, *build_flags, f.db_npy, "--quiet")
        self.assertTrue(os.path.isfile(index + ".faiss"))
        exact = parse_search(run("search", "-i", index, "-k", K, "--exact", f.q_npy).stdout)
        approx = parse_search(run("search", "-i", index, "-k", K, "--faiss", *search_flags, f.q_npy).stdout)
        self.assertEqual([q for q, _ in approx], [q for q, _ in exact])
        hits = sum(len({h[2] for h in a} & {h[2] for h in e}) for (_, a), (_, e) in zip(approx, exact))
        recall = hits / (K * len(exact))
        sys.stderr.write(f"\nFAISS {kind} {' '.join(build_flags + search_flags)}: recall@{K} vs exact = {recall:.3f}\n")
        self.assertGreaterEqual(recall, bound)
        for (_, a), (_, e) in zip(approx, exact):  # a neighbour found by both has the same score
            exact_score = {h[2]: h[1] for h in e}
            for h in a:
                if h[2] in exact_score:
                    self.assertAlmostEqual(h[1], exact_score[h[2]], delta=SCORE_TOL)
        return recall

    def test_ivf_recall(self):
        # 21 vectors in 4 lists, half of them probed.
        self.recall("ivf", ["--nlist", "4"], ["--nprobe", "2"], 0.6)
        # All lists probed: exact.
        self.assertEqual(self.recall("ivf", ["--nlist", "4"], ["--nprobe", "4"], 1.0), 1.0)

    def test_hnsw_recall(self):
        self.recall("hnsw", ["--hnsw-m", "8"], ["--ef-search", "32"], 0.9)


if __name__ == "__main__":
    unittest.main()
