#!/usr/bin/python3
"""Regenerate tests/golden/ from scratch, or check one committed golden against its source.

  /usr/bin/python3 tools/make_goldens.py                 # rewrite every golden + manifest.tsv
  /usr/bin/python3 tools/make_goldens.py --check CASE... # regenerate CASE(s) in a temp dir, compare
  /usr/bin/python3 tools/make_goldens.py --check-all

Reference outputs come from ONNX Runtime (tools/ort, single-threaded) on the
ONNX graph of each model; a float64 numpy forward pass is run beside it and
the disagreement is printed per model, as a sanity check of both.

Cases (see tests/golden/manifest.tsv; paths in it are relative to that file):
  (a) both shared .tflite models on 5 photos preprocessed like
      tf.image.resize to 224x224 and to 193x161 (H x W, odd, non-square):
      "features", plus "logits" at 224x224;
  (b) random MobileNetV2s (seed 1) at every width x {96, 160, 224} on one
      deterministic random input per resolution: "features"; 1.0/224 has a
      10-class classifier and a "logits" case;
  (c) a few intermediate layers (output_name = the layer or block name, NHWC
      [1, h, w, C] output) for debugging kernels.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import OrderedDict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from featx_export import model_spec, numpy_reference, onnx_export, ort_runner, preprocess  # noqa: E402

GOLDEN_DIR = os.path.join(model_spec.REPO_ROOT, "tests", "golden")
MANIFEST = "manifest.tsv"
HEADER = ["case", "model_spec", "input_npy", "output_npy", "output_name"]

TFLITE_MODELS = ["tf2_mobilenet_v2_1.0_224_ptq.tflite", "mobilenet_v2_1.0_224_quant.tflite"]
IMAGES = ["cat.bmp", "parrot.jpg", "grace_hopper.bmp", "bird.bmp", "pets.jpg"]
IMAGE_SIZES = [(224, 224), (193, 161)]
ALPHAS = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4]
RESOLUTIONS = [96, 160, 224]
SEED = 1
TOLERANCE = 1e-6


def _stem(name: str) -> str:
    return os.path.splitext(name)[0]


def cases():
    """The full, ordered list of (case, spec, input_npy, output_npy, output_name)."""
    out = []
    for model in TFLITE_MODELS:
        spec = f"tflite:{model}"
        mid = model_spec.model_id(spec)
        for h, w in IMAGE_SIZES:
            for image in IMAGES:
                name = f"{mid}_{_stem(image)}_{h}x{w}"
                inp = f"inputs/{_stem(image)}_{h}x{w}.npy"
                out.append((name, spec, inp, f"{name}.npy", "features"))
                if (h, w) == (224, 224):
                    out.append((f"{name}_logits", spec, inp, f"{name}_logits.npy", "logits"))
    for alpha in ALPHAS:
        for res in RESOLUTIONS:
            classes = 10 if (alpha, res) == (1.0, 224) else 0
            spec = model_spec.random_spec(alpha, res, SEED, classes)
            name = f"{model_spec.model_id(spec)}_random_{res}"
            inp = f"inputs/random_{res}.npy"
            out.append((name, spec, inp, f"{name}.npy", "features"))
            if classes:
                out.append((f"{name}_logits", spec, inp, f"{name}_logits.npy", "logits"))
    layer_cases = [
        (f"tflite:{TFLITE_MODELS[0]}", "inputs/cat_193x161.npy", "expanded_conv_12"),
        (model_spec.random_spec(0.35, 96, SEED), "inputs/random_96.npy", "Conv"),
        (model_spec.random_spec(0.35, 96, SEED), "inputs/random_96.npy", "expanded_conv_1/depthwise"),
        (model_spec.random_spec(1.3, 160, SEED), "inputs/random_160.npy", "expanded_conv_16/project"),
    ]
    for spec, inp, layer in layer_cases:
        name = f"{model_spec.model_id(spec)}_{_stem(os.path.basename(inp))}_layer_{layer.replace('/', '_')}"
        out.append((name, spec, inp, f"{name}.npy", layer))
    return out


def make_input(rel_path: str) -> np.ndarray:
    """Regenerate an input tensor [1, H, W, 3] float32 from its file name."""
    stem = _stem(os.path.basename(rel_path))
    kind, _, size = stem.rpartition("_")
    if kind == "random":
        res = int(size)
        rng = np.random.default_rng(1000 + res)
        return rng.uniform(0.0, 1.0, (1, res, res, 3)).astype(np.float32)
    h, w = (int(v) for v in size.split("x"))
    images = {_stem(i): i for i in IMAGES}
    path = os.path.join(model_spec.shared_dir(), "images", images[kind])
    return preprocess.preprocess(path, h, w)[None]


class _Models:
    """Networks and ONNX files built once per (spec, size, layer)."""

    def __init__(self, tmp: str):
        self.tmp = tmp
        self.nets = {}
        self.onnx = {}

    def net(self, spec):
        if spec not in self.nets:
            self.nets[spec] = model_spec.build(spec)
        return self.nets[spec]

    def onnx_path(self, spec, h, w, layer):
        key = (spec, h, w, layer)
        if key not in self.onnx:
            path = os.path.join(self.tmp, f"m{len(self.onnx)}.onnx")
            onnx_export.to_onnx(self.net(spec), h, w, path, output_layer=layer)
            self.onnx[key] = path
        return self.onnx[key]


def run_case(models: _Models, spec, x: np.ndarray, output_name: str):
    """(ORT output, float64 numpy output) for one case."""
    layer = None if output_name in ("features", "logits") else output_name
    path = models.onnx_path(spec, x.shape[1], x.shape[2], layer)
    ort_out = ort_runner.run(path, x, "layer" if layer else output_name)
    ref = numpy_reference.forward(models.net(spec), x, keep={layer} if layer else None)
    return ort_out, ref[layer if layer else output_name]


def _errors(a, b):
    diff = np.abs(a.astype(np.float64) - b)
    return float(diff.max()), float(np.linalg.norm(a.astype(np.float64) - b) / max(np.linalg.norm(b), 1e-30))


def generate(golden_dir: str) -> int:
    os.makedirs(os.path.join(golden_dir, "inputs"), exist_ok=True)
    for sub in (golden_dir, os.path.join(golden_dir, "inputs")):
        for f in os.listdir(sub):
            if f.endswith(".npy") or f == MANIFEST:
                os.remove(os.path.join(sub, f))
    all_cases = cases()
    stats = OrderedDict()
    with tempfile.TemporaryDirectory(prefix="featx_goldens_") as tmp:
        models = _Models(tmp)
        inputs = {}
        for name, spec, inp, outp, output_name in all_cases:
            if inp not in inputs:
                inputs[inp] = make_input(inp)
                np.save(os.path.join(golden_dir, inp), inputs[inp])
            ort_out, ref = run_case(models, spec, inputs[inp], output_name)
            np.save(os.path.join(golden_dir, outp), ort_out.astype(np.float32))
            mx, rel = _errors(ort_out, ref)
            key = (model_spec.model_id(spec), output_name if output_name in ("features", "logits") else "layer")
            prev = stats.get(key, (0.0, 0.0, 0))
            stats[key] = (max(prev[0], mx), max(prev[1], rel), prev[2] + 1)
            print(f"{name}: {output_name} {list(ort_out.shape)} max|ORT-f64| {mx:.2e} relL2 {rel:.2e}",
                  flush=True)
    with open(os.path.join(golden_dir, MANIFEST), "w") as f:
        f.write("\t".join(HEADER) + "\n")
        for row in all_cases:
            f.write("\t".join(row) + "\n")
    print(f"\nORT ({ort_runner.version()}) vs float64 numpy, worst case per model and output:")
    print(f"{'model':44s} {'output':9s} {'cases':>5s} {'max|diff|':>10s} {'relL2':>10s}")
    for (mid, out), (mx, rel, n) in stats.items():
        print(f"{mid:44s} {out:9s} {n:5d} {mx:10.2e} {rel:10.2e}")
    families = OrderedDict()
    for (mid, out), (mx, rel, n) in stats.items():
        fam = mid if mid.startswith("tflite") else "random (all widths/resolutions)"
        prev = families.get(fam, (0.0, 0.0))
        families[fam] = (max(prev[0], mx), max(prev[1], rel))
    print("\nper family (worst over all outputs):")
    for fam, (mx, rel) in families.items():
        print(f"  {fam:44s} max|diff| {mx:.2e}  relL2 {rel:.2e}")
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(golden_dir) for f in fs)
    print(f"\n{len(all_cases)} cases, {size / 1e6:.1f} MB in {golden_dir}")
    return 0


def read_manifest(golden_dir: str):
    with open(os.path.join(golden_dir, MANIFEST)) as f:
        lines = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    if lines[0] != HEADER:
        raise ValueError(f"{MANIFEST}: unexpected header {lines[0]}")
    return {row[0]: row for row in lines[1:]}


def check(golden_dir: str, names, tolerance: float) -> int:
    manifest = read_manifest(golden_dir)
    unknown = [n for n in names if n not in manifest]
    if unknown:
        print(f"make_goldens: error: unknown case(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    failures = 0
    with tempfile.TemporaryDirectory(prefix="featx_check_") as tmp:
        models = _Models(tmp)
        for name in names:
            _, spec, inp, outp, output_name = manifest[name]
            committed_in = np.load(os.path.join(golden_dir, inp))
            x = make_input(inp)
            in_diff = float(np.abs(x - committed_in).max()) if x.shape == committed_in.shape else float("inf")
            ort_out, _ = run_case(models, spec, x, output_name)
            committed = np.load(os.path.join(golden_dir, outp))
            out_diff = (float(np.abs(ort_out - committed).max()) if ort_out.shape == committed.shape
                        else float("inf"))
            ok = in_diff <= tolerance and out_diff <= tolerance
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name}: input max|diff| {in_diff:.2e}, "
                  f"output max|diff| {out_diff:.2e} (tolerance {tolerance:g})")
    return 1 if failures else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", nargs="+", metavar="CASE", help="regenerate these cases and compare")
    p.add_argument("--check-all", action="store_true", help="regenerate every case and compare")
    p.add_argument("--list", action="store_true", help="print the case names")
    p.add_argument("--tolerance", type=float, default=TOLERANCE, help="max |diff| for --check")
    p.add_argument("--golden-dir", default=GOLDEN_DIR)
    args = p.parse_args(argv)
    try:
        if args.list:
            print("\n".join(c[0] for c in cases()))
            return 0
        if not ort_runner.available():
            ort_runner.version()  # raises with the install hint
        if not os.path.isdir(os.path.join(model_spec.shared_dir(), "models")):
            raise FileNotFoundError(f"shared folder not found at {model_spec.shared_dir()} "
                                    f"(set FEATX_SHARED_DIR)")
        if args.check or args.check_all:
            names = list(read_manifest(args.golden_dir)) if args.check_all else args.check
            return check(args.golden_dir, names, args.tolerance)
        return generate(args.golden_dir)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"make_goldens: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
