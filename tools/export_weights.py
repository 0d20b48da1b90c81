#!/usr/bin/python3
"""Export a MobileNetV2 to a .featx model file (and/or an ONNX graph).

Sources (exactly one):
  --tflite FILE                       quantised or float .tflite (dequantised)
  --random --alpha A --resolution R --seed S [--classes N]
  --keras FILE [--keras-config JSON]  Keras .h5 (full model or weights), .keras, .weights.h5
  --saved-model DIR | --hub HANDLE

Outputs (at least one):
  -o OUT.featx [--prepacked]          the model file for featx; --prepacked stores
                                      the weights folded and packed as the runtime
                                      runs them (format version 3), used in place
                                      from a mapped file or ROM (docs/embedded.md)
  --onnx OUT.onnx [--size HxW]        the same float graph for ONNX Runtime
                                      (default size: the model's resolution)
  --print-summary                     layers, shapes and normalisation

--golden IMAGE... stores reference outputs computed by ONNX Runtime (through
tools/ort) on each image, preprocessed like tf.image.resize to --size, in
the .featx file, for `featx verify`.

Bad input gives one line on stderr and exit code 2; set FEATX_DEBUG=1 for
the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from featx_export import ir  # noqa: E402

PROG = "export_weights"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage too by default)
        sys.stderr.write(f"{PROG}: error: {message}\n")
        sys.exit(2)


def _size(text: str):
    try:
        h, w = (int(v) for v in text.lower().split("x"))
        if h < 1 or w < 1:
            raise ValueError
        return h, w
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HxW with positive integers, got {text!r}") from None


def _parse_args(argv):
    p = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--tflite", metavar="FILE")
    src.add_argument("--random", action="store_true")
    src.add_argument("--keras", "--keras-h5", dest="keras", metavar="FILE",
                     help="Keras 2 .h5 (model.save or weights), .keras archive, or .weights.h5")
    src.add_argument("--saved-model", metavar="DIR")
    src.add_argument("--hub", metavar="HANDLE")
    p.add_argument("--alpha", type=float, help="width multiplier (--random; optional hint elsewhere)")
    p.add_argument("--resolution", type=int, help="training resolution (--random; optional hint elsewhere)")
    p.add_argument("--seed", type=int, help="random seed (--random)")
    p.add_argument("--classes", type=int, default=0, help="classifier classes (--random; 0 = none)")
    p.add_argument("--keras-config", metavar="JSON",
                   help="model config for --keras weights files (config.json, model.to_json(), or a .keras)")
    p.add_argument("--dense", default="", metavar="SPEC",
                   help="random Dense head (--random), e.g. 'embedding_layer=128:relu,10:softmax'")
    p.add_argument("-o", "--output", metavar="OUT.featx")
    p.add_argument("--prepacked", action="store_true",
                   help="store batch norm folded and weights packed in 16-column panels, "
                        "64-byte aligned (format version 3: used in place, no copy at load)")
    p.add_argument("--onnx", metavar="OUT.onnx")
    p.add_argument("--size", type=_size, metavar="HxW", help="input size of the ONNX graph and goldens")
    p.add_argument("--golden", nargs="+", metavar="IMAGE", default=[])
    p.add_argument("--labels", metavar="FILE",
                   help="class names of the model's last layer, one per line (Teachable Machine's "
                        "numbered labels.txt too), stored in the model")
    p.add_argument("--print-summary", action="store_true")
    args = p.parse_args(argv)
    if args.random and (args.alpha is None or args.resolution is None or args.seed is None):
        p.error("--random needs --alpha, --resolution and --seed")
    if not (args.output or args.onnx or args.print_summary):
        p.error("nothing to do: give -o OUT.featx, --onnx OUT.onnx or --print-summary")
    if args.keras_config and not args.keras:
        p.error("--keras-config goes with --keras FILE")
    if args.golden and not args.output:
        p.error("--golden stores samples in the model file: give -o OUT.featx")
    if args.prepacked and not args.output:
        p.error("--prepacked is a way to write the model file: give -o OUT.featx")
    return args


def _read(args) -> ir.Network:
    if args.tflite:
        from featx_export.tflite_reader import read_tflite
        return read_tflite(args.tflite)
    if args.random:
        from featx_export.random_model import random_network
        return random_network(args.alpha, args.resolution, args.seed, args.classes, args.dense)
    hints = {"resolution": args.resolution} if args.resolution else {}
    if args.keras:
        from featx_export.keras_reader import read_keras
        return read_keras(args.keras, config_path=args.keras_config, width_multiplier=args.alpha,
                          **hints)
    if args.saved_model:
        from featx_export.saved_model_reader import read_saved_model
        return read_saved_model(args.saved_model, width_multiplier=args.alpha, **hints)
    from featx_export.hub_reader import read_hub
    return read_hub(args.hub, **hints)


def _goldens(net: ir.Network, images, height: int, width: int):
    from featx_export import onnx_export, ort_runner, preprocess
    with tempfile.TemporaryDirectory(prefix="featx_golden_") as tmp:
        model = os.path.join(tmp, "model.onnx")
        onnx_export.to_onnx(net, height, width, model)
        reference = ort_runner.version()
        for path in images:
            image = preprocess.preprocess(path, height, width)
            features = ort_runner.run(model, image[None], "features")[0]
            net.goldens.append(ir.Golden(name=os.path.basename(path), input=image, output=features,
                                         pool="avg", reference=reference))


def summary(net: ir.Network) -> str:
    lines = [f"{net.architecture} width {net.width_multiplier} resolution {net.resolution} "
             f"features {net.feature_dim} ({net.feature_layer})",
             f"source {net.source_format}: {net.source}",
             f"input: internal = {net.input_scale:.9g} * x + {net.input_offset:.9g}, x in [0, 1]"]
    params = 0
    for layer in net.layers():
        params += layer.kernel.size + (layer.bias.size if layer.bias is not None else 0)
        extra = " +bias" if layer.bias is not None else ""
        extra += " +bn" if layer.batch_norm is not None else ""
        lines.append(f"  {layer.name:28s} {layer.kind:9s} {'x'.join(map(str, layer.kernel.shape)):16s} "
                     f"stride {layer.stride} {layer.activation}{extra}")
    if net.classifier is not None:
        c = net.classifier
        params += c.weights.size
        lines.append(f"  classifier {c.num_classes} classes, label offset {c.label_offset}")
    for d in net.dense_head:
        params += d.weights.size + (d.bias.size if d.bias is not None else 0)
        lines.append(f"  dense {d.name:22s} {d.in_features} -> {d.out_features} {d.activation}"
                     f"{' +bias' if d.bias is not None else ''}")
    if net.labels:
        lines.append(f"  labels {len(net.labels)}: {', '.join(net.labels[:5])}{' ...' if len(net.labels) > 5 else ''}")
    lines.append(f"blocks {len(net.blocks)}, parameters {params}, goldens {len(net.goldens)}")
    if net.notes:
        lines.append(f"notes: {net.notes}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = _parse_args(argv)
    try:
        net = _read(args)
        if args.labels:
            from featx_export.labels import read_labels
            net.labels = read_labels(args.labels)
            if not net.dense_head:
                raise ValueError(f"{args.labels}: the model has no dense head to label "
                                 f"(an ImageNet .tflite's labels go to featx classify --labels)")
            if len(net.labels) != net.dense_head[-1].out_features:
                raise ValueError(f"{args.labels}: {len(net.labels)} labels for "
                                 f"{net.dense_head[-1].out_features} outputs of the last layer "
                                 f"{net.dense_head[-1].name}")
        for line in net.report:
            sys.stderr.write(f"{PROG}: {line}\n")
        height, width = args.size or (net.resolution, net.resolution)
        if args.golden:
            _goldens(net, args.golden, height, width)
        if args.output:
            from featx_export.writer import write_featx
            write_featx(net, args.output, prepacked=args.prepacked)
        if args.onnx:
            from featx_export.onnx_export import to_onnx
            to_onnx(net, height, width, args.onnx)
        if args.print_summary:
            print(summary(net))
    except Exception as e:  # noqa: BLE001 - the contract is one line, never a traceback
        if os.environ.get("FEATX_DEBUG"):
            raise
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, OSError) and e.filename and str(e.filename) not in message:
            message = f"{e.filename}: {message}"
        elif isinstance(e, OSError) and e.filename:
            message = f"{e.filename}: {e.strerror}"
        sys.stderr.write(f"{PROG}: error: {message}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
