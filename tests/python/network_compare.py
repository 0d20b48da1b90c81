"""Exact comparison of two ir.Networks' weights and Dense heads, for reader round-trip tests."""

import numpy as np

BN_PARAMS = ("gamma", "beta", "moving_mean", "moving_variance")


def assert_same_weights(test, expected, actual):
    """Every layer's name, kind, stride, activation, kernel, bias and BN params equal."""
    test.assertEqual(len(actual.blocks), len(expected.blocks))
    pairs = list(zip(expected.layers(), actual.layers()))
    test.assertEqual(len(pairs), len(list(actual.layers())))
    for a, b in pairs:
        test.assertEqual((a.name, a.kind, a.stride, a.activation),
                         (b.name, b.kind, b.stride, b.activation))
        test.assertEqual(b.kernel.dtype, np.float32, b.name)
        test.assertTrue(np.array_equal(a.kernel, b.kernel), f"{a.name} kernel")
        test.assertEqual(a.bias is None, b.bias is None, f"{a.name} bias")
        if a.bias is not None:
            test.assertTrue(np.array_equal(a.bias, b.bias), f"{a.name} bias")
        for p in BN_PARAMS:
            test.assertTrue(np.array_equal(getattr(a.batch_norm, p), getattr(b.batch_norm, p)),
                            f"{a.name} {p}")
        test.assertEqual(a.batch_norm.epsilon, b.batch_norm.epsilon)
    for x, y in zip(expected.blocks, actual.blocks):
        test.assertEqual((x.name, x.expansion, x.stride, x.in_channels, x.out_channels),
                         (y.name, y.expansion, y.stride, y.in_channels, y.out_channels))
    test.assertEqual((expected.input_scale, expected.input_offset),
                     (actual.input_scale, actual.input_offset))
    test.assertAlmostEqual(expected.width_multiplier, actual.width_multiplier)
    test.assertEqual(expected.classifier is None, actual.classifier is None)
    if expected.classifier is not None:
        test.assertTrue(np.array_equal(expected.classifier.weights, actual.classifier.weights))
        test.assertTrue(np.array_equal(expected.classifier.bias, actual.classifier.bias))


def assert_same_head(test, expected, actual):
    """The Dense heads: names, activations, float32 weights and biases equal."""
    test.assertEqual([d.name for d in actual.dense_head], [d.name for d in expected.dense_head])
    for a, b in zip(expected.dense_head, actual.dense_head):
        test.assertEqual(a.activation, b.activation, a.name)
        test.assertEqual(b.weights.dtype, np.float32)
        test.assertTrue(np.array_equal(a.weights, b.weights), f"{a.name} weights")
        test.assertEqual(a.bias is None, b.bias is None, f"{a.name} bias")
        if a.bias is not None:
            test.assertTrue(np.array_equal(a.bias, b.bias), f"{a.name} bias")
