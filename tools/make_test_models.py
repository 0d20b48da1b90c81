#!/usr/bin/python3
"""Export every model named in tests/golden/manifest.tsv to DIR/<model_id>.featx.

  /usr/bin/python3 tools/make_test_models.py --out build/test_models [--no-goldens] [--only ID...]

File names (deterministic, from the manifest's model_spec column):
  tflite:<name>.tflite                                  -> tflite_<name>.featx
      e.g. tflite_tf2_mobilenet_v2_1.0_224_ptq.featx
  random:alpha=<a>,resolution=<r>,seed=<s>,classes=<n>  -> random_a<a>_r<r>_s<s>_c<n>.featx
      e.g. random_a0.35_r96_s1_c0.featx, random_a1.0_r224_s1_c10.featx
      (<a> as Python prints the float: 0.35, 0.5, 1.0, 1.3)

A few models (PREPACKED) are also written prepacked (export_weights.py
--prepacked: weights folded and packed, used in place) as
<model_id>_prepacked.featx, with the same goldens; tests/test_embedded.cpp
and examples/embedded_rom.cpp use them.

Unless --no-goldens, each model carries its manifest "features" cases as
GoldenSamples (input and ORT output read from tests/golden, not recomputed),
so `featx verify` can run on it. A models.tsv index (model_id, file,
model_spec) is written beside them. .tflite models need the shared folder
(FEATX_SHARED_DIR, default ../shared).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import OrderedDict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from featx_export import ir, model_spec  # noqa: E402
from featx_export.writer import write_featx  # noqa: E402

GOLDEN_DIR = os.path.join(model_spec.REPO_ROOT, "tests", "golden")

# Also written prepacked: the smallest model (fast tests, the embedded
# example), a 1.0 with a classifier (in-place logits), and a real .tflite
# (conv biases instead of batch norm; RAM figures of docs/embedded.md).
PREPACKED = ("random_a0.35_r96_s1_c0", "random_a1.0_r224_s1_c10", "tflite_tf2_mobilenet_v2_1.0_224_ptq")


def _reference() -> str:
    """The ORT that made the goldens: the version tools/ort/package.json pins."""
    with open(os.path.join(model_spec.REPO_ROOT, "tools", "ort", "package.json")) as f:
        return "onnxruntime-node " + json.load(f)["dependencies"]["onnxruntime-node"]


def _manifest(golden_dir: str):
    with open(os.path.join(golden_dir, "manifest.tsv")) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return rows[1:]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--golden-dir", default=GOLDEN_DIR)
    p.add_argument("--no-goldens", action="store_true", help="do not embed golden samples")
    p.add_argument("--only", nargs="+", metavar="MODEL_ID", help="export only these model ids")
    args = p.parse_args(argv)
    try:
        rows = _manifest(args.golden_dir)
        specs = OrderedDict()
        for case, spec, inp, outp, output_name in rows:
            specs.setdefault(spec, []).append((case, inp, outp, output_name))
        os.makedirs(args.out, exist_ok=True)
        reference = _reference()
        index = []
        for spec, cases in specs.items():
            mid = model_spec.model_id(spec)
            variants = [(mid, False)] + ([(f"{mid}_prepacked", True)] if mid in PREPACKED else [])
            variants = [v for v in variants if not args.only or v[0] in args.only]
            if not variants:
                continue
            net = model_spec.build(spec)
            if not args.no_goldens:
                for case, inp, outp, output_name in cases:
                    if output_name != "features":
                        continue
                    x = np.load(os.path.join(args.golden_dir, inp))
                    y = np.load(os.path.join(args.golden_dir, outp))
                    net.goldens.append(ir.Golden(name=case, input=x[0], output=y[0], pool="avg",
                                                 reference=reference))
            for file_id, prepacked in variants:
                path = os.path.join(args.out, f"{file_id}.featx")
                write_featx(net, path, prepacked=prepacked)
                index.append((file_id, os.path.basename(path), spec))
                print(f"{path}: {len(net.goldens)} goldens, {os.path.getsize(path) / 1e6:.1f} MB", flush=True)
        with open(os.path.join(args.out, "models.tsv"), "w") as f:
            f.write("model_id\tfile\tmodel_spec\n")
            for row in index:
                f.write("\t".join(row) + "\n")
    except (OSError, ValueError) as e:
        print(f"make_test_models: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
