"""End to end: image -> preprocess -> exported graph in ONNX Runtime -> ImageNet label."""

import os
import tempfile
import unittest

import numpy as np

import support
from featx_export import numpy_reference, onnx_export, ort_runner, preprocess, tflite_reader

EXPECTED = {"cat.bmp": "Egyptian cat", "parrot.jpg": "macaw", "grace_hopper.bmp": "military uniform"}


def _labels():
    with open(os.path.join(support.IMAGES, "imagenet_labels.txt")) as f:
        return [line.rstrip("\n") for line in f]


class LabelsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        support.require_shared()
        cls.labels = _labels()
        cls.images = np.stack([preprocess.preprocess(os.path.join(support.IMAGES, name), 224, 224)
                               for name in EXPECTED])

    def top1(self, model_path, use_ort):
        net = tflite_reader.read_tflite(model_path)
        if use_ort:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "m.onnx")
                onnx_export.to_onnx(net, 224, 224, path)
                logits = ort_runner.run(path, self.images, "logits")
        else:
            logits = numpy_reference.forward(net, self.images)["logits"]
        offset = net.classifier.label_offset
        return [self.labels[int(i) + offset] for i in logits.argmax(axis=1)]

    def test_tf2_model_with_ort(self):
        support.require_ort()
        self.assertEqual(self.top1(support.TF2_MODEL, True), list(EXPECTED.values()))

    def test_slim_model_with_ort(self):
        support.require_ort()
        self.assertEqual(self.top1(support.SLIM_MODEL, True), list(EXPECTED.values()))

    def test_tf2_model_with_numpy_reference(self):
        self.assertEqual(self.top1(support.TF2_MODEL, False), list(EXPECTED.values()))

    def test_labels_file(self):
        self.assertEqual(len(self.labels), 1001)
        self.assertEqual(self.labels[0], "background")


if __name__ == "__main__":
    unittest.main()
