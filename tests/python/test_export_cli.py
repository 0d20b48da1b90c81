"""tools/export_weights.py as a user meets it: one-line errors, exit code 2, files that load."""

import os
import subprocess
import sys
import tempfile
import unittest

import support
from featx_export import reader

SCRIPT = os.path.join(support.TOOLS, "export_weights.py")


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)


class ExportCliTest(unittest.TestCase):
    def assert_one_line_error(self, proc, needle):
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertTrue(lines[0].startswith("export_weights: error: "), lines[0])
        self.assertIn(needle, lines[0])

    def test_missing_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            missing = os.path.join(tmp, "missing.tflite")
            self.assert_one_line_error(run("--tflite", missing, "-o", os.path.join(tmp, "x.featx")),
                                       missing)
            self.assertFalse(os.path.exists(os.path.join(tmp, "x.featx")))

    def test_not_tflite_bytes(self):
        with tempfile.TemporaryDirectory() as tmp:
            junk = os.path.join(tmp, "junk.tflite")
            with open(junk, "wb") as f:
                f.write(b"this is not a flatbuffer at all" * 10)
            self.assert_one_line_error(run("--tflite", junk, "-o", os.path.join(tmp, "x.featx")),
                                       "not a TFLite model")
            with open(junk, "wb") as f:
                f.write(b"\x10\x00\x00\x00TFL3" + b"\xff" * 40)
            self.assert_one_line_error(run("--tflite", junk, "-o", os.path.join(tmp, "x.featx")), junk)

    def test_directory_and_usage_errors(self):
        with tempfile.TemporaryDirectory() as tmp:
            self.assert_one_line_error(run("--tflite", tmp, "-o", os.path.join(tmp, "x.featx")), tmp)
        self.assert_one_line_error(run("--random", "--alpha", "1.0", "-o", "x.featx"), "--seed")
        self.assert_one_line_error(run(), "required")
        self.assert_one_line_error(run("--random", "--alpha", "1", "--resolution", "96", "--seed", "1"),
                                   "nothing to do")
        self.assert_one_line_error(run("--random", "--alpha", "1", "--resolution", "96", "--seed", "1",
                                       "--onnx", "x.onnx", "--size", "12by4"), "HxW")

    def test_unwritable_output(self):
        self.assert_one_line_error(run("--random", "--alpha", "0.35", "--resolution", "96", "--seed", "1",
                                       "-o", "/nonexistent-dir/x.featx"), "/nonexistent-dir")

    def test_random_export_with_onnx_and_summary(self):
        with tempfile.TemporaryDirectory() as tmp:
            out, onnx_path = os.path.join(tmp, "r.featx"), os.path.join(tmp, "r.onnx")
            proc = run("--random", "--alpha", "0.5", "--resolution", "128", "--seed", "4", "--classes", "3",
                       "-o", out, "--onnx", onnx_path, "--size", "65x33", "--print-summary")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertIn("expanded_conv_16/project", proc.stdout)
            net = reader.read_featx(out)
            self.assertEqual((net.width_multiplier, net.resolution, net.classifier.num_classes), (0.5, 128, 3))
            self.assertTrue(os.path.getsize(onnx_path) > 0)

    def test_golden_samples_stored(self):
        support.require_shared()
        support.require_ort()
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "g.featx")
            proc = run("--random", "--alpha", "0.35", "--resolution", "96", "--seed", "1", "-o", out,
                       "--golden", os.path.join(support.IMAGES, "cat.bmp"))
            self.assertEqual(proc.returncode, 0, proc.stderr)
            net = reader.read_featx(out)
            self.assertEqual(len(net.goldens), 1)
            g = net.goldens[0]
            self.assertEqual((g.name, g.input.shape, g.output.shape), ("cat.bmp", (96, 96, 3), (1280,)))
            self.assertTrue(g.reference.startswith("onnxruntime-node"))

    def test_bad_golden_image(self):
        support.require_ort()
        with tempfile.TemporaryDirectory() as tmp:
            bad = os.path.join(tmp, "bad.png")
            with open(bad, "wb") as f:
                f.write(b"not a png")
            self.assert_one_line_error(run("--random", "--alpha", "0.35", "--resolution", "96", "--seed", "1",
                                           "-o", os.path.join(tmp, "x.featx"), "--golden", bad), bad)


if __name__ == "__main__":
    unittest.main()
