"""tests/golden is complete, consistent with make_goldens.py, and reproducible."""

import os
import subprocess
import sys
import unittest

import numpy as np

import support

GOLDEN = os.path.join(support.REPO_ROOT, "tests", "golden")
SCRIPT = os.path.join(support.TOOLS, "make_goldens.py")


def manifest():
    with open(os.path.join(GOLDEN, "manifest.tsv")) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return rows[0], rows[1:]


class GoldensTest(unittest.TestCase):
    def test_manifest_matches_generator_and_files(self):
        header, rows = manifest()
        self.assertEqual(header, ["case", "model_spec", "input_npy", "output_npy", "output_name"])
        listed = subprocess.run([sys.executable, SCRIPT, "--list"], capture_output=True, text=True,
                                check=True).stdout.split()
        self.assertEqual([r[0] for r in rows], listed, "manifest is stale: rerun tools/make_goldens.py")
        for case, spec, inp, outp, output_name in rows:
            x, y = np.load(os.path.join(GOLDEN, inp)), np.load(os.path.join(GOLDEN, outp))
            self.assertEqual((x.dtype, y.dtype), (np.float32, np.float32), case)
            self.assertEqual((x.ndim, x.shape[0], x.shape[3]), (4, 1, 3), case)
            self.assertTrue(np.all(np.isfinite(y)), case)
            if output_name == "features":
                self.assertEqual(y.shape[0], 1)
                self.assertIn(y.shape[1], (1280, 1664, 1792), case)

    def test_size_budget(self):
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(GOLDEN) for f in fs)
        self.assertLess(size, 15e6)

    def test_check_reproduces_committed_goldens(self):
        support.require_ort()
        support.require_shared()
        cases = ["random_a0.35_r96_s1_c0_random_96", "tflite_mobilenet_v2_1.0_224_quant_cat_193x161",
                 "random_a0.35_r96_s1_c0_random_96_layer_expanded_conv_1_depthwise"]
        proc = subprocess.run([sys.executable, SCRIPT, "--check", *cases], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual(proc.stdout.count("ok "), len(cases), proc.stdout)


if __name__ == "__main__":
    unittest.main()
