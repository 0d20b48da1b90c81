#!/usr/bin/python3
"""JPEG decode times and the feature-vector differences between decoders and
presets (the numbers in docs/jpeg_decoding.md).

  /usr/bin/python3 bench/image_decode.py --build build --stb-build build-nojpeg [--runs 15]

--build: a build with libjpeg (the default); --stb-build: one configured with
-DFEATX_USE_LIBJPEG=OFF (JPEG through stb_image). Both need featx and
tests/featx_image_dump built, and --build its test models (build/test_models).
Test JPEGs (720p and 12 MP, quality 90, 4:2:0) are made with cjpeg from an
upscaled shared photo into BUILD/image_bench.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("FEATX_SHARED_DIR", os.path.join(os.path.dirname(REPO), "shared"))
PHOTOS = ("kite_and_cold.jpg", "parrot.jpg", "pets.jpg")


def make_jpegs(work: str):
    os.makedirs(work, exist_ok=True)
    src = Image.open(os.path.join(SHARED, "images", "kite_and_cold.jpg")).convert("RGB")
    made = {}
    for name, size in (("720p", (1280, 720)), ("12mp", (4000, 3000))):
        ppm, jpg = os.path.join(work, name + ".ppm"), os.path.join(work, name + ".jpg")
        src.resize(size, Image.BICUBIC).save(ppm)
        subprocess.run(["cjpeg", "-quality", "90", "-sample", "2x2,1x1,1x1", "-outfile", jpg, ppm], check=True)
        os.remove(ppm)
        made[name] = jpg
    return made


def time_ms(dump: str, runs: int, path: str, *args) -> str:
    out = subprocess.run([dump, "--time", str(runs), *args, path], check=True, capture_output=True, text=True)
    decoder, size, median, minimum = out.stdout.strip().split("\t")
    return f"{median.split()[1]} ms median, {minimum.split()[1]} min  [{decoder}, {size}]"


def features(cli: str, model: str, preset: str, paths) -> np.ndarray:
    out = os.path.join(os.path.dirname(model), f"bench_{preset}.npy")
    subprocess.run([cli, "extract", "-m", model, "--preprocess", preset, "--threads", "1", "-o", out, *paths],
                   check=True, capture_output=True)
    return np.load(out).astype(np.float64)


def diff(a: np.ndarray, b: np.ndarray) -> str:
    rows = []
    for name, x, y in zip(PHOTOS, a, b):
        rows.append(f"{name}: max |d| {np.abs(x - y).max():.3g}, rel L2 {np.linalg.norm(x - y) / np.linalg.norm(y):.3g}")
    return "; ".join(rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.path.join(REPO, "build"))
    p.add_argument("--stb-build", required=True)
    p.add_argument("--runs", type=int, default=15)
    args = p.parse_args()
    dump, dump_stb = (os.path.join(b, "tests", "featx_image_dump") for b in (args.build, args.stb_build))
    jpegs = make_jpegs(os.path.join(args.build, "image_bench"))
    print(f"median of {args.runs} runs, file read included; 'pixels' = decode to the 8-bit samples load_image "
          f"resizes from, 'float' = decode_image_file's float Image:")
    for name, path in jpegs.items():
        for what in ("--pixels", "--decode"):
            label = "pixels" if what == "--pixels" else "float "
            print(f"  {name} {label} libjpeg tf:    {time_ms(dump, args.runs, path, what)}")
            print(f"  {name} {label} libjpeg keras: {time_ms(dump, args.runs, path, what, '--style', 'keras')}")
            print(f"  {name} {label} stb_image:     {time_ms(dump_stb, args.runs, path, what)}")
        for preset in ("tf", "fast", "tf-antialias", "keras"):
            print(f"  {name} {preset} preset, decode + resize to 224: "
                  f"{time_ms(dump, args.runs, path, '--preset', preset)}")
    model = os.path.join(args.build, "test_models", "tflite_tf2_mobilenet_v2_1.0_224_ptq.featx")
    paths = [os.path.join(SHARED, "images", p) for p in PHOTOS]
    cli, cli_stb = (os.path.join(b, "featx") for b in (args.build, args.stb_build))
    tf = features(cli, model, "tf", paths)
    print("feature vectors (TF2 MobileNetV2 1.0/224), difference to the tf preset with libjpeg:")
    print("  stb_image (tf preset):", diff(features(cli_stb, model, "tf", paths), tf))
    for preset in ("keras", "tf-antialias", "fast"):
        print(f"  {preset}:", diff(features(cli, model, preset, paths), tf))
    return 0


if __name__ == "__main__":
    sys.exit(main())
