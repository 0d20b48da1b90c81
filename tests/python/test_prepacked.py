"""export_weights.py --prepacked: weights folded and packed offline (format version 3).

The runtime folds a normal file at load; a prepacked file must hold the same
floats bit for bit, so `featx extract` on the two files must print identical
bits, from every source (the sources differ in what is folded: batch norm,
conv biases, a Keras dense head, a classifier). Every float vector of a
prepacked file starts on a 64-byte boundary of the file.
"""

import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import featx_cli
import support
from featx_export import ir, prepack, reader
from featx_export.checkpoint_writer import write_mobilenet_checkpoint
from featx_export.random_model import random_network
from featx_export.writer import to_bytes, write_featx

from featx.fb.ModelFile import ModelFile
from featx.fb.Network import Network

SCRIPT = os.path.join(support.TOOLS, "export_weights.py")
ROWS = 96


def export(*args):
    proc = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"export_weights {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def float_vectors(path):
    """(what, file offset, floats) of every float vector of a .featx file."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    base = np.frombuffer(data, np.uint8).ctypes.data
    mf = ModelFile.GetRootAs(data, 0)
    payload = mf.PayloadAsNumpy()
    start = payload.ctypes.data - base
    net = Network.GetRootAs(data, start)
    out = [("payload", start, payload.size)]

    def add(what, array):
        if not isinstance(array, int):  # the generated code gives 0 for an absent vector
            out.append((what, array.ctypes.data - base, array.size))

    convs = [net.Stem(), net.Head()]
    for i in range(net.BlocksLength()):
        b = net.Blocks(i)
        convs += [c for c in (b.Expand(), b.Depthwise(), b.Project()) if c is not None]
    for c in convs:
        name = c.Name().decode()
        add(f"{name} kernel", c.KernelAsNumpy())
        if c.Packed() is not None:
            add(f"{name} packed weights", c.Packed().WeightsAsNumpy())
            add(f"{name} packed bias", c.Packed().BiasAsNumpy())
    if net.Classifier() is not None:
        add("classifier weights", net.Classifier().WeightsAsNumpy())
        add("classifier bias", net.Classifier().BiasAsNumpy())
    for i in range(net.DenseHeadLength()):
        add(f"dense {i} weights", net.DenseHead(i).WeightsAsNumpy())
        add(f"dense {i} bias", net.DenseHead(i).BiasAsNumpy())
    for i in range(net.GoldensLength()):
        add(f"golden {i} input", net.Goldens(i).InputAsNumpy())
        add(f"golden {i} output", net.Goldens(i).OutputAsNumpy())
    return mf.FormatVersion(), out


class PrepackedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="featx_prepacked_")
        cls.tmp = cls._tmp.name
        rng = np.random.default_rng(5)
        cls.images = os.path.join(cls.tmp, "images.npy")
        np.save(cls.images, rng.random((2, ROWS, ROWS, 3), dtype=np.float32))

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp, name)

    def assert_prepacked_same_bits(self, name, *source, layer_flags=()):
        """Exports `source` both ways; the features (and each extra --layer) agree bit for bit."""
        normal, packed = self.path(f"{name}.featx"), self.path(f"{name}_prepacked.featx")
        export(*source, "-o", normal)
        export(*source, "-o", packed, "--prepacked")
        self.assert_aligned(packed)
        self.assertIn(float_vectors(normal)[0], (ir.FORMAT_VERSION, ir.FORMAT_VERSION_WITH_HEAD))
        for flags in ((),) + tuple(layer_flags):
            with self.subTest(source=name, flags=flags):
                a = featx_cli.extract(normal, [self.images], *flags)
                b = featx_cli.extract(packed, [self.images], *flags)
                self.assertEqual(a.shape, b.shape)
                self.assertTrue(np.array_equal(a.view(np.uint32), b.view(np.uint32)),
                                f"{name}: features differ, max {np.max(np.abs(a - b))}")
        return normal, packed

    def assert_aligned(self, path):
        version, vectors = float_vectors(path)
        self.assertEqual(version, ir.FORMAT_VERSION_PREPACKED)
        packed = [v for v in vectors if "packed" in v[0]]
        self.assertGreater(len(packed), 100)
        for what, offset, _ in vectors:
            self.assertEqual(offset % 64, 0, f"{path}: {what} at file offset {offset}")
        for what, _, size in vectors:
            if what.endswith(" kernel"):
                self.assertEqual(size, 0, f"{what}: a prepacked file keeps no raw kernel")

    def test_random_with_batch_norm_and_dense_head(self):
        self.assert_prepacked_same_bits(
            "random", "--random", "--alpha", "0.35", "--resolution", str(ROWS), "--seed", "3",
            "--dense", "embedding=32:relu,5:softmax",
            layer_flags=(("--layer", "expanded_conv_4"), ("--layer", "embedding")))

    def test_tflite_conv_biases_and_classifier(self):
        support.require_shared()
        for model in (support.TF2_MODEL, support.SLIM_MODEL):
            normal, packed = self.assert_prepacked_same_bits(
                os.path.basename(model), "--tflite", model, layer_flags=(("--layer", "Logits"),))
            self.assertLess(abs(os.path.getsize(packed) - os.path.getsize(normal)),
                            os.path.getsize(normal) // 50, "prepacked size within 2 % of normal")

    def test_keras_h5(self):
        try:
            import h5py  # noqa: F401
        except ImportError:
            support._loud_skip("h5py not installed (python3-h5py)")
        import keras_writers
        net = random_network(0.35, ROWS, seed=11, dense="embedding_layer=16:relu,3:softmax")
        path = self.path("model.h5")
        keras_writers.keras2_h5(path, keras_writers.functional_inline(net))
        self.assert_prepacked_same_bits("keras", "--keras", path)

    def test_saved_model(self):
        net = random_network(0.35, ROWS, seed=7, classes=1001)
        model = self.path("saved_model")
        write_mobilenet_checkpoint(os.path.join(model, "variables", "variables"), net, names="slim")
        open(os.path.join(model, "saved_model.pb"), "wb").close()  # the reader never parses it
        self.assert_prepacked_same_bits("saved_model", "--saved-model", model)

    def test_goldens_kept_and_verified_on_both(self):
        support.require_ort()
        image = os.path.join(support.IMAGES, "cat.bmp")
        if not os.path.isfile(image):
            support._loud_skip(f"{image} not found (set FEATX_SHARED_DIR)")
        source = ("--random", "--alpha", "0.35", "--resolution", str(ROWS), "--seed", "4",
                  "--golden", image)
        normal, packed = self.path("golden.featx"), self.path("golden_prepacked.featx")
        export(*source, "-o", normal)
        export(*source, "-o", packed, "--prepacked")
        a, b = reader.read_featx(normal).goldens, reader.read_featx(packed).goldens
        self.assertEqual(len(a), 1)
        self.assertTrue(np.array_equal(a[0].output, b[0].output))
        for path in (normal, packed):
            out = featx_cli.run("verify", path).stdout
            self.assertIn("PASS", out)
            self.assertNotIn("FAIL", out)

    def test_reads_back_as_the_folded_network(self):
        """reader: panels unpacked to HWIO, the folded bias as conv bias, no batch norm;
        written raw again it folds (scale 1) to the same floats."""
        net = random_network(0.35, ROWS, seed=9)
        packed, again = self.path("rb_prepacked.featx"), self.path("rb_again.featx")
        write_featx(net, packed, prepacked=True)
        back = reader.read_featx(packed)
        for src, got in zip(net.layers(), back.layers()):
            weights, bias = prepack.fold(src)
            self.assertIsNone(got.batch_norm)
            self.assertTrue(np.array_equal(got.kernel, weights), src.name)
            self.assertTrue(np.array_equal(got.bias, bias), src.name)
        write_featx(back, again)
        a = featx_cli.extract(packed, [self.images])
        b = featx_cli.extract(again, [self.images])
        self.assertTrue(np.array_equal(a.view(np.uint32), b.view(np.uint32)))

    def test_reader_refuses_a_version_that_disagrees_with_the_layers(self):
        net = random_network(0.35, ROWS, seed=9)
        for prepacked, claimed, needle in ((False, ir.FORMAT_VERSION_PREPACKED, "no prepacked weights"),
                                           (True, ir.FORMAT_VERSION_WITH_HEAD, "prepacked weights in a file")):
            data = bytearray(to_bytes(net, prepacked=prepacked))
            mf = ModelFile.GetRootAs(data, 0)
            struct.pack_into("<I", data, mf._tab.Pos + mf._tab.Offset(4), claimed)
            with self.assertRaisesRegex(ValueError, f"layer [^ ]+: {needle}"):
                reader.from_bytes(bytes(data))

    def test_runtime_refuses_vectors_off_the_64_byte_grid(self):
        from unittest import mock
        from featx_export import writer
        path = self.path("misaligned_prepacked.featx")
        with mock.patch.object(writer, "PREPACKED_ALIGNMENT", 4):
            write_featx(random_network(0.35, ROWS, seed=9), path, prepacked=True)
        offsets = [offset for what, offset, _ in float_vectors(path)[1] if "packed" in what]
        self.assertTrue(any(o % 64 for o in offsets), "the patched writer must misalign something")
        proc = featx_cli.run("inspect", path, check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("not 64-byte aligned in the file", proc.stderr)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)

    def test_panel_layout(self):
        """pack_panels against the runtime's packed_index (kernels/packed_weights.hpp):
        (col / 16 * rows + row) * 16 + col % 16, zero padding past the columns."""
        rows, cols = 7, 37
        m = np.arange(rows * cols, dtype=np.float32).reshape(rows, cols) + 1
        packed = prepack.pack_panels(m)
        self.assertEqual(packed.size, rows * 48)
        for r in range(rows):
            for c in range(cols):
                self.assertEqual(packed[(c // 16 * rows + r) * 16 + c % 16], m[r, c])
        self.assertEqual(np.count_nonzero(packed), rows * cols)
        self.assertTrue(np.array_equal(prepack.unpack_panels(packed, rows, cols), m))
        with self.assertRaises(ValueError):
            prepack.unpack_panels(packed[:-16], rows, cols)

    def test_prepacked_needs_an_output_file(self):
        proc = subprocess.run([sys.executable, SCRIPT, "--random", "--alpha", "0.35", "--resolution",
                               "96", "--seed", "1", "--prepacked", "--print-summary"],
                              capture_output=True, text=True)
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertIn("--prepacked", proc.stderr)


if __name__ == "__main__":
    unittest.main()
