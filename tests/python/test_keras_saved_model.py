"""A user's whole Keras model saved as a SavedModel (Keras 2 `model.save('dir')`):
the base and the Dense head are read without TensorFlow.

Fixtures come from keras_saved_model_writer (the layout TF 2.x writes:
checkpoint object graph, saved_model.pb, keras_metadata.pb), from random
networks; the writer's protos are pinned to TF's bytes on the real
TensorFlow-written SavedModel in ../shared. The runtime tests compare the
exported .featx through the featx CLI with ONNX Runtime features and a numpy
head whose weights the test reads from the checkpoint by raw key.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import support  # noqa: F401  (import path)
from featx_export import ir, onnx_export, ort_runner, reader
from featx_export import saved_model_proto as smp
from featx_export.checkpoint_writer import write_bundle
from featx_export.keras_saved_model import load_keras_objects
from featx_export.keras_saved_model_writer import write_keras_saved_model
from featx_export.random_model import random_network
from featx_export.saved_model_reader import read_saved_model
from featx_export.tf_checkpoint import open_checkpoint, read_checkpoint
from network_compare import assert_same_head, assert_same_weights

SHARED = os.environ.get("FEATX_SHARED_DIR", os.path.join(os.path.dirname(support.REPO_ROOT),
                                                         "shared"))
TF2 = os.path.join(SHARED, "fixtures", "tf_saved_models", "saved_model_half_plus_two_tf2_cpu",
                   "00000123")
EXPORT = os.path.join(support.TOOLS, "export_weights.py")
HEAD = "embedding_layer=128:relu,10:softmax"


def edit_root_layers(fn):
    """edit_metadata hook changing the root model's layer list (config and model_config)."""
    def edit(path, meta):
        if path == "root":
            fn(meta["config"]["layers"])
            meta["model_config"]["config"] = meta["config"]
    return edit


class Escaping(unittest.TestCase):
    def test_tf_object_name_escaping(self):
        self.assertEqual(smp.escape_local_name("MobilenetV2/Conv/weights:0"),
                         "MobilenetV2.SConv.Sweights:0")
        for name in ("MobilenetV2/Conv/weights:0", "a.b/c", "..S", "x.S/y", ""):
            self.assertEqual(smp.unescape_local_name(smp.escape_local_name(name)), name)
        self.assertEqual(smp.escape_local_name("a.b/c"), "a..b.Sc")
        path, attr = smp.split_checkpoint_key(
            "pretrained/MobilenetV2.SConv.Sweights:0/.ATTRIBUTES/VARIABLE_VALUE")
        self.assertEqual((path, attr), (["pretrained", "MobilenetV2/Conv/weights:0"],
                                        "VARIABLE_VALUE"))
        slot = "layer_with_weights-1/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE"
        self.assertEqual(smp.split_checkpoint_key(slot), ([slot], ""))
        with self.assertRaisesRegex(ValueError, "not a TF object-name escape"):
            smp.unescape_local_name("a.x")


class ProtosMatchTensorFlow(unittest.TestCase):
    """The field numbers and encodings, pinned to a SavedModel TF 2.14 wrote."""

    @classmethod
    def setUpClass(cls):
        if not os.path.isdir(TF2):
            support._loud_skip(f"TF SavedModel fixture not found at {TF2} (set FEATX_SHARED_DIR)")

    def test_object_graph_reencodes_to_tensorflow_bytes(self):
        ckpt = open_checkpoint(TF2)
        graph = smp.parse_trackable_object_graph(ckpt.object_graph)
        self.assertEqual(len(graph.nodes), 24)
        self.assertEqual(graph.nodes[0].child("b"), 2)
        self.assertEqual(graph.nodes[2].attributes,
                         [("VARIABLE_VALUE", "b", "b/.ATTRIBUTES/VARIABLE_VALUE")])
        self.assertEqual(smp.encode_trackable_object_graph(graph), ckpt.object_graph)
        # ... and the whole bundle, written from keys + that graph, is TF's byte for byte.
        prefix = os.path.join(tempfile.mkdtemp(), "variables")
        self.addCleanup(shutil.rmtree, os.path.dirname(prefix))
        keyed = {k: ckpt.read(k) for k in ckpt.entries if k != "_CHECKPOINTABLE_OBJECT_GRAPH"}
        write_bundle(prefix, keyed, object_graph=smp.encode_trackable_object_graph(graph),
                     compress=True)
        for suffix in (".index", ".data-00000-of-00001"):
            with open(prefix + suffix, "rb") as mine, \
                    open(os.path.join(TF2, "variables", "variables" + suffix), "rb") as tf:
                self.assertEqual(mine.read(), tf.read(), suffix)

    def test_saved_object_graph(self):
        with open(os.path.join(TF2, "saved_model.pb"), "rb") as f:
            data = f.read()
        version, graphs = smp.parse_saved_model(data)
        self.assertEqual((version, len(graphs)), (1, 1))
        self.assertEqual((graphs[0].tags, graphs[0].tensorflow_version), (["serve"], "2.14.0"))
        graph = graphs[0].object_graph
        self.assertEqual([n.kind for n in graph.nodes[:6]],
                         ["user_object", "variable", "variable", "variable", "asset", "function"])
        self.assertEqual(graph.nodes[0].identifier, "_generic_user_object")
        self.assertEqual([graph.nodes[i].variable_name for i in (1, 2, 3)], ["a", "b", "c"])
        self.assertEqual(graph.paths()[23], ("signatures", "serving_default"))
        # The writer's SavedObjects are TF's bytes for the kinds it writes.
        from featx_export import protowire
        raw = protowire.decode(protowire.decode(protowire.decode(data)[2][0])[7][0])[1]
        for i in (0, 1, 2, 3, 11):
            self.assertEqual(smp.encode_saved_object(graph.nodes[i], (1, ())), raw[i], i)
        # A tf.Module, not Keras: no Keras metadata, so the reader reads variables only.
        objects, reason = load_keras_objects(TF2)
        self.assertIsNone(objects)
        self.assertIn("no keras_metadata.pb and no Keras metadata in saved_model.pb", reason)


class KerasSavedModelRead(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="featx_keras_sm_")
        cls.net = random_network(0.35, 96, seed=21, dense=HEAD)
        cls.nobias = random_network(0.5, 128, seed=22, dense="features=64:relu6,3:linear")
        cls.nobias.dense_head[-1].bias = None

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def write(self, name, net, **kwargs):
        return write_keras_saved_model(os.path.join(self.tmp, name), net, **kwargs)

    def assert_reads_back(self, model, net, input_scale=2.0, input_offset=-1.0):
        back = read_saved_model(model)
        expected_scale, net.input_scale = net.input_scale, input_scale
        expected_offset, net.input_offset = net.input_offset, input_offset
        try:
            assert_same_weights(self, net, back)
        finally:
            net.input_scale, net.input_offset = expected_scale, expected_offset
        assert_same_head(self, net, back)
        self.assertEqual((back.resolution, back.source_format), (net.resolution, "saved_model"))
        return back

    def test_a_hub_keras_layer_sequential(self):
        model = self.write("hub", self.net)
        keys = open_checkpoint(model).keys()
        support.assert_contains(
            self, keys, "layer_with_weights-0/MobilenetV2.SConv.Sweights:0/.ATTRIBUTES/VARIABLE_VALUE",
            "layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE")
        self.assertTrue(any(".OPTIMIZER_SLOT" in k for k in keys))
        back = self.assert_reads_back(model, self.net)
        support.assert_contains(
            self, "\n".join(back.report),
            "kept base hub.KerasLayer 'keras_layer' (260 slim-named variables",
            "kept dense 'embedding_layer' 1280 -> 128 relu +bias",
            "kept dense 'dense_1' 128 -> 10 softmax +bias",
            "skipped dropout 'dropout' (identity at inference)", "8 optimizer slots",
            "internal = 2 * x - 1")

    def test_a_variants(self):
        # Keras <= 2.4 (metadata inside saved_model.pb), a functional root, Snappy blocks,
        # another layer name, no optimizer.
        for name, kwargs in (("old", dict(metadata="object_graph")),
                             ("functional", dict(root="functional", base_name="pretrained")),
                             ("snappy", dict(compress=True, optimizer=False, dropout=False))):
            with self.subTest(name):
                model = self.write(f"hub_{name}", self.net, **kwargs)
                self.assertEqual(os.path.isfile(os.path.join(model, "keras_metadata.pb")),
                                 name != "old")
                self.assert_reads_back(model, self.net)

    def test_b_keras_applications_base(self):
        for name, kwargs in (("nested", dict(base="keras")),
                             ("nested_functional", dict(base="keras", root="functional")),
                             ("inline", dict(base="inline", root="functional")),
                             ("nested_old", dict(base="keras", metadata="object_graph"))):
            with self.subTest(name):
                model = self.write(f"keras_{name}", self.net, **kwargs)
                back = self.assert_reads_back(model, self.net)
                support.assert_contains(
                    self, "\n".join(back.report), "kept base keras.applications MobileNetV2",
                    "'Conv1' ... 'out_relu', 260 Keras-named variables",
                    "kept pooling 'global_average_pooling2d'", "preprocess_input outside the model")

    def test_c_no_bias_on_the_last_layer(self):
        for base in ("hub", "keras"):
            with self.subTest(base):
                model = self.write(f"nobias_{base}", self.nobias, base=base)
                back = self.assert_reads_back(model, self.nobias)
                self.assertIsNone(back.dense_head[-1].bias)
                self.assertIn("kept dense 'dense_1' 64 -> 3 linear (no bias)", back.report)

    def test_input_normalisation_from_rescaling_and_preprocess_ops(self):
        rescale = ("Rescaling", "rescaling", {"name": "rescaling", "scale": 1 / 127.5,
                                              "offset": -1.0})
        model = self.write("rescale_keras", self.net, base="keras", pre=[rescale])
        self.assert_reads_back(model, self.net)  # 255 x / 127.5 - 1 = 2 x - 1
        model = self.write("rescale_hub", self.net, pre=[("Rescaling", "rescaling", {
            "name": "rescaling", "scale": 1 / 255.0, "offset": 0.0})])
        self.assert_reads_back(model, self.net)  # the Hub layer's x * 2 - 1 on 255 x / 255
        # A Rescaling(1/255) before keras.applications (which wants [-1, 1]) is faithful too.
        model = self.write("rescale_wrong", self.net, base="keras", pre=[("Rescaling", "r", {
            "name": "r", "scale": 1 / 255.0, "offset": 0.0})])
        back = read_saved_model(model)
        self.assertAlmostEqual(back.input_scale, 1.0, places=12)
        self.assertEqual(back.input_offset, 0.0)
        # The transfer-learning tutorial: augmentation, preprocess_input as TFOpLambda ops.
        ops = [("RandomFlip", "random_flip", {"name": "random_flip", "mode": "horizontal"}),
               ("TFOpLambda", "tf.math.truediv", {"name": "tf.math.truediv",
                                                  "function": "math.truediv",
                                                  "_call_kwargs": {"y": 127.5, "name": None}}),
               ("TFOpLambda", "tf.math.subtract", {"name": "tf.math.subtract",
                                                   "function": "math.subtract",
                                                   "_call_kwargs": {"y": 1.0, "name": None}})]
        model = self.write("tutorial", self.net, base="keras", root="functional", pre=ops)
        back = self.assert_reads_back(model, self.net)
        self.assertIn("skipped RandomFlip 'random_flip' (augmentation, identity at inference)",
                      back.report)

    def test_batch_norm_epsilon_from_the_layer_config(self):
        def edit(path, meta):
            if path == "root":
                nested = meta["config"]["layers"][1]["config"]["layers"]
                next(e for e in nested if e["name"] == "block_3_expand_BN")["config"][
                    "epsilon"] = 1e-5
        model = self.write("epsilon", self.net, base="keras", edit_metadata=edit)
        back = read_saved_model(model)
        self.assertEqual(back.blocks[3].expand.batch_norm.epsilon, 1e-5)
        self.assertEqual(back.blocks[3].depthwise.batch_norm.epsilon, 0.001)
        self.assertIn("batch-norm epsilon from the layer configs (1 layers, e.g. "
                      "'block_3_expand_BN' 1e-05)", back.report)

    def test_node_paths_missing_from_the_object_graph(self):
        # Metadata paths the checkpoint's graph does not have: variables by full name.
        for base in ("hub", "keras"):
            with self.subTest(base):
                model = self.write(f"paths_{base}", self.net, base=base)
                path = os.path.join(model, "keras_metadata.pb")
                with open(path, "rb") as f:
                    nodes = smp.parse_saved_metadata(f.read())
                for n in nodes:
                    n.node_path = n.node_path.replace("layer_with_weights-", "weights_layer-")
                with open(path, "wb") as f:
                    f.write(smp.encode_saved_metadata(nodes))
                self.assert_reads_back(model, self.net)

    def test_activation_layer_folds_into_a_linear_dense(self):
        net = random_network(0.35, 96, seed=23, dense="embedding_layer=16:relu,dense_1=4:linear")

        def add_softmax(layers):
            layers.append({"class_name": "Activation", "config": {"name": "activation",
                                                                  "activation": "softmax"}})
        model = self.write("activation", net, edit_metadata=edit_root_layers(add_softmax))
        back = read_saved_model(model)
        self.assertEqual(back.dense_head[-1].activation, "softmax")
        self.assertIn("folded activation 'activation' (softmax) into dense 'dense_1' -> softmax",
                      back.report)

    def test_keras_applications_top_is_the_classifier(self):
        net = random_network(0.35, 96, seed=24, dense="predictions=1000:softmax")
        model = self.write("top", net, base="keras", dropout=False)
        back = read_saved_model(model)
        self.assertEqual(back.dense_head, [])
        self.assertEqual((back.classifier.num_classes, back.classifier.label_offset), (1000, 1))
        self.assertTrue(np.array_equal(back.classifier.weights, net.dense_head[0].weights))

    def test_hub_classification_logits_feed_the_head(self):
        net = random_network(0.35, 96, seed=25, classes=1001)
        rng = np.random.default_rng(3)
        net.dense_head = [ir.Dense("dense", rng.normal(0, 0.03, (5, 1001)).astype(np.float32),
                                   rng.normal(0, 0.1, 5).astype(np.float32), "softmax")]
        model = self.write("hub_logits", net)
        back = read_saved_model(model)
        self.assertIsNone(back.classifier)
        self.assertEqual([d.name for d in back.dense_head], ["Logits", "dense"])
        self.assertTrue(np.array_equal(back.dense_head[0].weights, net.classifier.weights))
        self.assertTrue(np.array_equal(back.dense_head[1].weights, net.dense_head[0].weights))

    def test_plain_hub_saved_model_still_reads(self):
        model = self.write("plain", self.net, metadata="none")
        os.remove(os.path.join(model, "saved_model.pb"))
        net = random_network(0.35, 96, seed=21)
        from featx_export.checkpoint_writer import write_mobilenet_checkpoint
        plain = os.path.join(self.tmp, "mobilenet_v2_035_96")
        write_mobilenet_checkpoint(os.path.join(plain, "variables", "variables"), net, tf2=True)
        open(os.path.join(plain, "saved_model.pb"), "wb").close()
        back = read_saved_model(plain)
        assert_same_weights(self, net, back)
        self.assertEqual(back.dense_head, [])
        self.assertIn("no Keras layers read", back.report[0])


class KerasSavedModelErrors(unittest.TestCase):
    """Bad input: one line naming the directory (or file) and the problem."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="featx_keras_bad_")
        cls.net = random_network(0.35, 96, seed=31, dense=HEAD)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def assert_error(self, model, *needles, path=None):
        with self.assertRaises(ValueError) as ctx:
            read_saved_model(model)
        message = str(ctx.exception)
        self.assertNotIn("\n", message)
        self.assertIn(path or model, message)
        for needle in needles:
            self.assertIn(needle, message)
        return message

    def write(self, name, net=None, **kwargs):
        return write_keras_saved_model(os.path.join(self.tmp, name), net or self.net, **kwargs)

    def test_missing_keras_metadata(self):
        model = self.write("no_metadata", metadata="none")
        self.assert_error(model, "no keras_metadata.pb and no Keras metadata in saved_model.pb",
                          "embedding_layer/kernel", "would be dropped")

    def test_corrupt_metadata(self):
        model = self.write("corrupt")
        path = os.path.join(model, "keras_metadata.pb")
        with open(path, "rb") as f:
            data = f.read()
        for junk in (data[:len(data) // 2], b"\x0a\xff\xff\xff\x0f", b"\x07garbage"):
            with open(path, "wb") as f:
                f.write(junk)
            self.assert_error(model, "unreadable SavedMetadata proto", path=path)
        with open(path, "wb") as f:
            f.write(smp.encode_saved_metadata([smp.KerasNode(0, "root", "_tf_keras_sequential",
                                                             "{not json")]))
        self.assert_error(model, "metadata of root is not JSON", path=path)
        with open(path, "wb") as f:
            f.write(b"")
        self.assert_error(model, "holds no Keras objects", path=path)
        model = self.write("corrupt_pb", metadata="none")
        with open(os.path.join(model, "saved_model.pb"), "wb") as f:
            f.write(b"\x12\xff\xff\xff\x7f")
        self.assert_error(model, "unreadable SavedModel proto")

    def test_unknown_activation(self):
        model = self.write("sigmoid", activations={"dense_1": "sigmoid"})
        self.assert_error(model, "layer 'dense_1' (Dense)", "activation 'sigmoid': featx's head runs",
                          "linear, relu, relu6, softmax")

    def test_dense_input_width_is_not_the_feature_width(self):
        net = random_network(0.35, 96, seed=32, dense="embedding_layer=8:relu")
        net.dense_head[0].weights = np.zeros((8, 1000), np.float32)
        model = self.write("width", net)
        self.assert_error(model, "layer 'embedding_layer' (Dense)", "takes 1000 inputs",
                          "the layer before it gives 1280")

    def test_missing_head_variable(self):
        model = self.write("no_bias", omit=["dense_1/bias"])
        self.assert_error(model, "layer 'dense_1' (Dense)", "holds no bias",
                          "root.layer_with_weights-2")
        model = self.write("no_kernel", omit=["embedding_layer/kernel"])
        self.assert_error(model, "layer 'embedding_layer' (Dense)", "holds no kernel")

    def test_unsupported_layers(self):
        def insert(index, entry):
            return edit_root_layers(lambda layers: layers.insert(index, entry))
        bn = {"class_name": "BatchNormalization", "config": {"name": "batch_normalization"}}
        model = self.write("bn_after", edit_metadata=insert(3, bn))
        self.assert_error(model, "layer 'batch_normalization' (BatchNormalization): after "
                          "MobileNetV2")
        model = self.write("lambda_before", edit_metadata=insert(1, {
            "class_name": "Lambda", "config": {"name": "lambda"}}))
        self.assert_error(model, "layer 'lambda' (Lambda): before MobileNetV2")
        model = self.write("no_pool", base="keras", edit_metadata=edit_root_layers(
            lambda layers: layers.pop(2)))
        self.assert_error(model, "layer 'embedding_layer' (Dense): a Dense layer on the spatial map "
                          "before global pooling")

        def subclassed(path, meta):
            if path == "root":
                meta["class_name"] = "MyModel"
                del meta["config"], meta["model_config"]
        model = self.write("subclassed", edit_metadata=subclassed)
        self.assert_error(model, "subclassed model")

        def branch(layers):
            layers[-1]["inbound_nodes"] = [[["dropout", 0, 0, {}]]]
        model = self.write("branch", root="functional", edit_metadata=edit_root_layers(branch))
        self.assert_error(model, "layer 'embedding_layer' (Dense)",
                          "not on the path from the input through MobileNetV2 to the output")

    def test_base_checked_like_every_keras_container(self):
        def miswire(path, meta):
            if path == "root":
                base = meta["config"]["layers"][1]["config"]["layers"]
                add = next(e for e in base if e["config"]["name"] == "block_2_add")
                add["inbound_nodes"] = [[["block_2_project_BN", 0, 0, {}],
                                         ["block_2_depthwise_relu", 0, 0, {}]]]
        model = self.write("miswired", base="keras", edit_metadata=miswire)
        self.assert_error(model, "layer 'block_2_add' (Add): takes",
                          "the standard MobileNetV2 takes")

    def test_export_cli_one_line(self):
        model = self.write("cli_sigmoid", activations={"embedding_layer": "tanh"})
        proc = subprocess.run([sys.executable, EXPORT, "--saved-model", model, "-o",
                               os.path.join(self.tmp, "x.featx")], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertIn(model, lines[0])
        self.assertIn("activation 'tanh': featx's head runs", lines[0])
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "x.featx")))


class KerasSavedModelRuntime(unittest.TestCase):
    """Exported through export_weights, run by the featx CLI, against ONNX Runtime
    features of the source network and a numpy head on weights read by raw key."""

    @classmethod
    def setUpClass(cls):
        support.require_ort()
        import featx_cli
        featx_cli.binary()
        cls.cli = featx_cli
        cls.tmp = tempfile.mkdtemp(prefix="featx_keras_rt_")
        rng = np.random.default_rng(9)
        cls.images = rng.random((3, 96, 96, 3), dtype=np.float32)
        cls.input = os.path.join(cls.tmp, "images.npy")
        np.save(cls.input, cls.images)
        cls.cases = {}
        for base in ("hub", "keras"):
            net = random_network(0.35, 96, seed=41,
                                 dense="embedding_layer=128:relu,dense_1=10:softmax")
            if base == "keras":
                net.dense_head[-1].bias = None
            model = write_keras_saved_model(os.path.join(cls.tmp, base), net, base=base)
            out = os.path.join(cls.tmp, f"{base}.featx")
            proc = subprocess.run([sys.executable, EXPORT, "--saved-model", model, "-o", out],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise AssertionError(proc.stderr)
            onnx = os.path.join(cls.tmp, f"{base}.onnx")
            onnx_export.to_onnx(net, 96, 96, onnx)  # the source network, not the reader's
            features = ort_runner.run(onnx, cls.images, "features")
            raw = read_checkpoint(model, raw_keys=True)
            layers = []
            for i, d in enumerate(net.dense_head):
                key = f"layer_with_weights-{i + 1}/{{}}/.ATTRIBUTES/VARIABLE_VALUE"
                bias = raw.get(key.format("bias"))
                layers.append((raw[key.format("kernel")].T, bias, d.activation))
            cls.cases[base] = (out, features, layers, proc.stderr)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_export_report(self):
        for base, (_, _, _, stderr) in self.cases.items():
            self.assertIn("export_weights: kept dense 'embedding_layer' 1280 -> 128 relu", stderr)
            self.assertIn("kept base", stderr)

    def test_features_match_onnx_runtime(self):
        for base, (model, features, _, _) in self.cases.items():
            with self.subTest(base):
                got = self.cli.extract(model, [self.input])
                self.assertEqual(got.shape, features.shape)
                err = float(np.max(np.abs(got - features)))
                self.assertLessEqual(err, 5e-5, base)
                self.assertLessEqual(self.cli.rel_l2(got, features), 1e-5, base)
                print(f"\n  keras saved model {base}: features max|err| {err:.2g} "
                      f"rel L2 {self.cli.rel_l2(got, features):.2g}", file=sys.stderr)

    def test_head_matches_numpy(self):
        for base, (model, features, layers, _) in self.cases.items():
            with self.subTest(base):
                for i, name in enumerate(["embedding_layer", "dense_1"]):
                    got = self.cli.extract(model, [self.input], "--layer", name)
                    want = self.cli.head_reference(features, layers, upto=i)
                    err = self.cli.assert_close(self, got, want, 1e-5, f"{base} {name}")
                    print(f"\n  keras saved model {base} {name}: max|err| {err:.2g}",
                          file=sys.stderr)
                probs = self.cli.head_reference(features, layers)
                for i, (_, ranks) in enumerate(self.cli.classify(model, [self.input], "-k", "3")):
                    self.assertEqual([c for _, _, c, _ in ranks],
                                     list(np.argsort(-probs[i], kind="stable")[:3]))
                    for _, p, c, _ in ranks:
                        self.assertAlmostEqual(p, probs[i, c], delta=1e-5)

    def test_featx_file_holds_the_head(self):
        for base, (model, _, layers, _) in self.cases.items():
            back = reader.read_featx(model)
            self.assertEqual([d.name for d in back.dense_head], ["embedding_layer", "dense_1"])
            for d, (w, b, act) in zip(back.dense_head, layers):
                self.assertTrue(np.array_equal(d.weights, w))
                self.assertEqual(d.bias is None, b is None)
                self.assertEqual(d.activation, act)


if __name__ == "__main__":
    unittest.main()
