#!/usr/bin/python3
"""Seed corpora for the featx fuzz targets, generated (never committed).

  /usr/bin/python3 fuzz/make_corpus.py BUILD_DIR [--shared DIR] [--seed-writer BIN]

Writes BUILD_DIR/seeds/<target>/ for every target of fuzz/targets.sh from
real files: tiny MobileNetV2-shaped models exported by tools/featx_export
(plain, prepacked, with a classifier, a Dense head and labels), small images
made with PIL and cjpeg (baseline, progressive, restart markers, grey,
4:2:0 / 4:4:4, optimised, arithmetic, CMYK), PNG / BMP / GIF / TGA / PNM,
.npy files written by numpy, .fxi / .fxp / .pca files written by featx
itself (fuzz/seed_writer), text files the CLI reads and command lines.
With --shared (the project's shared folder), crops of its photos are added.
Every seed stays under its target's -max_len (fuzz/targets.sh).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tools"))

from featx_export import ir  # noqa: E402
from featx_export.random_model import random_network, random_dense_head, parse_dense_spec  # noqa: E402
from featx_export.writer import to_bytes  # noqa: E402

MAX_LEN = {"model": 65536, "model_crc": 65536, "image_stb": 32768, "image_jpeg": 32768,
           "preprocess": 32768, "npy": 16384, "probe": 16384, "pca": 16384, "index": 16384,
           "textfiles": 4096, "args": 4096}


class Seeds:
    def __init__(self, root: str):
        self.root = root
        self.count = {}

    def add(self, target: str, name: str, data: bytes) -> None:
        if len(data) > MAX_LEN[target]:
            return
        d = os.path.join(self.root, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        self.count[target] = self.count.get(target, 0) + 1


# ---- models -------------------------------------------------------------------

def tiny_network(seed: int, blocks: int, head: int, classes: int = 0, dense: str = "",
                 labels: bool = False) -> ir.Network:
    """A MobileNetV2 cut to its first `blocks` blocks and a `head`-wide last conv:
    the same file structure as a real export in a few kilobytes."""
    net = random_network(0.35, 32, seed)
    net.blocks = net.blocks[:blocks]
    channels = net.blocks[-1].out_channels if net.blocks else net.stem.out_channels
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0.0, 0.3, (1, 1, channels, head)).astype(np.float32)
    net.head = ir.Conv(name="Conv_1", kind="full", kernel=kernel, stride=1,
                       batch_norm=ir.BatchNorm(gamma=np.ones(head, np.float32), beta=np.zeros(head, np.float32),
                                               moving_mean=np.zeros(head, np.float32),
                                               moving_variance=np.ones(head, np.float32)),
                       activation="relu6")
    if classes:
        net.classifier = ir.Classifier(weights=rng.normal(0.0, 0.3, (classes, head)).astype(np.float32),
                                       bias=np.zeros(classes, np.float32))
    if dense:
        net.dense_head = random_dense_head(rng, head, parse_dense_spec(dense))
    if labels:
        outputs = classes or (net.dense_head[-1].weights.shape[0] if net.dense_head else 0)
        net.labels = [f"class {i}" for i in range(outputs)]
    net.source = f"fuzz seed {seed}"
    return net


def model_seeds(seeds: Seeds) -> None:
    variants = {
        "stem_only": (tiny_network(1, 0, 8), False),
        "one_block": (tiny_network(2, 1, 8), False),
        "two_blocks": (tiny_network(3, 2, 16), False),
        "two_blocks_prepacked": (tiny_network(3, 2, 16), True),
        "residual": (tiny_network(4, 5, 8), False),
        "classifier_labels": (tiny_network(5, 1, 8, classes=3, labels=True), False),
        "classifier_prepacked": (tiny_network(5, 1, 8, classes=3), True),
        "dense_head": (tiny_network(6, 1, 8, dense="emb=4:relu,3:softmax", labels=True), False),
    }
    for name, (net, prepacked) in variants.items():
        data = to_bytes(net, prepacked)
        seeds.add("model", name + ".featx", data)
        seeds.add("model_crc", name + ".featx", data)


# ---- images -------------------------------------------------------------------

def picture(w: int, h: int, seed: int) -> Image.Image:
    """Gradients, an edge and noise: something every JPEG mode has work on."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), ((x + y) % 16) * 16], -1)
    a = (a + rng.integers(0, 24, a.shape)) % 256
    a[: h // 2, : w // 3] = [250, 20, 20]
    return Image.fromarray(a.astype(np.uint8), "RGB")


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


def cjpeg(ppm: bytes, args) -> bytes:
    return subprocess.run(["cjpeg", *args], input=ppm, stdout=subprocess.PIPE, check=True).stdout


# cjpeg variants (also what tests/test_image.cpp's stb check decodes).
CJPEG_VARIANTS = {
    "baseline": ["-quality", "85"],
    "progressive": ["-progressive"],
    "restart": ["-restart", "1"],
    "restart_blocks": ["-restart", "3B", "-progressive"],
    "grey": ["-grayscale"],
    "grey_progressive": ["-grayscale", "-progressive"],
    "s420": ["-sample", "2x2"],
    "s444": ["-sample", "1x1"],
    "s422_progressive": ["-sample", "2x1", "-progressive"],
    "optimize": ["-optimize", "-quality", "30"],
    "arithmetic": ["-arithmetic"],
    "baseline_q100": ["-quality", "100", "-dct", "float"],
}


def jpeg_files(w: int, h: int, seed: int):
    img = picture(w, h, seed)
    ppm = encode(img, "PPM")
    pgm = encode(img.convert("L"), "PPM")
    out = {}
    for name, args in CJPEG_VARIANTS.items():
        out[name] = cjpeg(pgm if name.startswith("grey") else ppm, args)
    out["pil_cmyk"] = encode(img.convert("CMYK"), "JPEG", quality=80)
    out["pil_progressive_420"] = encode(img, "JPEG", quality=70, progressive=True, subsampling=2)
    return out


def image_files(shared: str | None):
    files = {}
    for (w, h, seed) in ((24, 17, 1), (9, 40, 2)):
        for name, data in jpeg_files(w, h, seed).items():
            files[f"{name}_{w}x{h}.jpg"] = data
    img = picture(13, 11, 3)
    files["rgb.png"] = encode(img, "PNG")
    files["rgba.png"] = encode(img.convert("RGBA"), "PNG")
    files["grey.png"] = encode(img.convert("L"), "PNG")
    files["palette.png"] = encode(img.convert("P"), "PNG")
    grey16 = Image.fromarray((np.arange(13 * 11, dtype=np.uint16).reshape(11, 13) * 300), "I;16")
    files["grey16.png"] = encode(grey16, "PNG")
    files["rgb.bmp"] = encode(img, "BMP")
    files["grey.bmp"] = encode(img.convert("L"), "BMP")
    files["anim.gif"] = encode(img.convert("P"), "GIF", save_all=True, append_images=[picture(13, 11, 4).convert("P")])
    files["rgb.tga"] = encode(img, "TGA")
    files["rle.tga"] = encode(img, "TGA", compression="tga_rle")
    files["rgb.ppm"] = encode(img, "PPM")
    files["grey.pgm"] = encode(img.convert("L"), "PPM")
    files["maxval1000.ppm"] = b"P6\n# maxval 1000\n3 2\n1000\n" + bytes(range(36))
    files["maxval15.pgm"] = b"P5 4 2 15\n" + bytes([0, 3, 7, 15, 1, 2, 4, 8])
    if shared:
        for photo in ("pets.jpg", "parrot.jpg"):
            path = os.path.join(shared, "images", photo)
            if os.path.exists(path):
                crop = Image.open(path).convert("RGB").resize((48, 32))
                files["shared_" + photo] = encode(crop, "JPEG", quality=60)
                files["shared_progressive_" + photo] = encode(crop, "JPEG", quality=60, progressive=True)
    return files


def image_seeds(seeds: Seeds, shared: str | None) -> None:
    files = image_files(shared)
    for name, data in files.items():
        # Option byte (fuzz/fuzz_image.hpp): tf style, 1/1; and keras with 1/2 for JPEGs.
        for target in ("image_stb", "image_jpeg"):
            seeds.add(target, name, b"\x00" + data)
            if name.endswith(".jpg"):
                seeds.add(target, "k2_" + name, b"\x03" + data)
        # preprocess (fuzz/fuzz_preprocess.cpp): preset/crop byte, height, width.
        seeds.add("preprocess", name, bytes([0x00, 7, 5]) + data)
        if name.endswith(".jpg") or name.endswith(".png"):
            seeds.add("preprocess", "keras_crop_" + name, bytes([0x06, 16, 3]) + data)
            seeds.add("preprocess", "fast_" + name, bytes([0x03, 2, 2]) + data)
            seeds.add("preprocess", "antialias_" + name, bytes([0x01, 4, 9]) + data)


# ---- .npy ---------------------------------------------------------------------

def npy_bytes(a: np.ndarray, version=None) -> bytes:
    b = io.BytesIO()
    if version is None:
        np.save(b, a)
    else:
        np.lib.format.write_array(b, a, version=version)
    return b.getvalue()


def npy_seeds(seeds: Seeds) -> None:
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    arrays = {
        "f4_2x3x4": x,
        "f4_row": x.reshape(-1),
        "f8": x.astype(np.float64),
        "f2": x.astype(np.float16),
        "big_endian": x.astype(">f4"),
        "fortran": np.asfortranarray(x.reshape(4, 6)),
        "scalar": np.float32(3.5).reshape(()),
        "empty": np.zeros((0, 5), np.float32),
        "u1": (x * 100).astype(np.uint8),
        "i4": (x * 100).astype(np.int32),
        "images_1x2x2x3": np.full((1, 2, 2, 3), 0.5, np.float32),
    }
    for name, a in arrays.items():
        seeds.add("npy", name + ".npy", npy_bytes(a))
    seeds.add("npy", "v2.npy", npy_bytes(x, (2, 0)))
    seeds.add("npy", "v3.npy", npy_bytes(x, (3, 0)))


# ---- files featx writes -------------------------------------------------------

def featx_file_seeds(seeds: Seeds, seed_writer: str | None) -> None:
    if not seed_writer:
        print("make_corpus: no seed_writer: no .fxi/.fxp/.pca seeds", file=sys.stderr)
        return
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([seed_writer, d], check=True)
        for f in sorted(os.listdir(d)):
            target = {".fxi": "index", ".fxp": "probe", ".pca": "pca"}.get(os.path.splitext(f)[1])
            if target:
                with open(os.path.join(d, f), "rb") as fh:
                    seeds.add(target, f, fh.read())


def text_seeds(seeds: Seeds, shared: str | None) -> None:
    # fuzz/fuzz_textfiles.cpp: the first byte picks the reader.
    job = ("featx extract job 1\nmodel build/mobilenet_v2.featx 0123456789abcdef\npool avg\nlayer \n"
           "size 224x224\ncrop 1\npreprocess tf\ninputs 3\n")
    files = {
        "shard_record": "featx shard 2\nshard 1 4\nrange 5 10\n" + job,
        "shard_record_bad": "featx shard 2\nshard 4 4\nrange 10 5\n" + job,
        "labels": "background\ncat\ndog\r\nkite\n\n",
        "labels_numbered": "0 Cat\n1 Dog\n2 Bird\n",
        "path_list": "a.jpg\r\n\nsub/b.png\nc.npy",
        "names": "img_0.jpg\nimg_1.jpg\n",
        "job": job,
    }
    if shared:
        path = os.path.join(shared, "images", "imagenet_labels.txt")
        if os.path.exists(path):
            with open(path, "rb") as f:
                files["imagenet_labels_head"] = f.read()[:3000].decode("latin-1")
    for i, (name, text) in enumerate(files.items()):
        for reader in range(4):
            seeds.add("textfiles", f"{name}_{reader}", bytes([reader]) + text.encode("latin-1"))


COMMAND_LINES = [
    "extract -m model.featx --pool max --layer block_3 --threads 2 --batch 4 --size 160x128 --crop 0.875 "
    "--preprocess keras -o out.npy --l2 --recursive --shard 1/3 --resume --quiet --decoders 2 a.jpg dir",
    "extract -m=model.featx --shards 4 --list - -o out.jsonl x.npy",
    "merge -o all.npy part0.npy part1.npy",
    "pca fit -o m.pca -k 64 --whiten v.npy",
    "pca transform -m m.pca -o out.npy v.npy",
    "pca -o x",
    "index -o i.fxi --faiss hnsw --nlist 16 --hnsw-m 8 --ef-construction 40 --threads 1 --quiet v.npy",
    "search -i i.fxi -k 5 -m model.featx --size 96 --crop 1 --preprocess tf --nprobe 2 --ef-search 9 "
    "--html out.html --exact q.jpg",
    "classify -m model.featx --labels labels.txt -k 5 --size 224x224 --batch 2 cat.jpg",
    "classify --probe p.fxp -k 2 v.npy",
    "train-probe -o p.fxp --kind logistic --l2 1e-4 --max-iter 50 --tol 1e-6 v.npy labels.txt",
    "train-probe -o p.fxp --kind mean v.npy --labels-from-dirs",
    "inspect model.featx",
    "verify model.featx",
    "bench -m model.featx --threads 1 --batch 1 --size 96x96 --runs 3 --warmup 1 --profile --no-fuse",
    "extract --poll x",
    "extract -m",
    "search -i i.fxi -k -3 q.npy",
]


def args_seeds(seeds: Seeds) -> None:
    for i, line in enumerate(COMMAND_LINES):
        # fuzz/fuzz_args.cpp: argv[1..] separated by NUL; the env byte first.
        seeds.add("args", f"cmd_{i:02d}", bytes([i % 4]) + b"\0".join(w.encode() for w in line.split(" ")))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build_dir")
    ap.add_argument("--shared", help="the shared folder (images/) for photo crops")
    ap.add_argument("--seed-writer", help="fuzz/seed_writer binary (default BUILD_DIR/seed_writer)")
    a = ap.parse_args(argv)
    root = os.path.join(a.build_dir, "seeds")
    shutil.rmtree(root, ignore_errors=True)
    seeds = Seeds(root)
    writer = a.seed_writer or os.path.join(a.build_dir, "seed_writer")
    model_seeds(seeds)
    image_seeds(seeds, a.shared)
    npy_seeds(seeds)
    featx_file_seeds(seeds, writer if os.path.exists(writer) else None)
    text_seeds(seeds, a.shared)
    args_seeds(seeds)
    print("make_corpus: " + ", ".join(f"{t} {n}" for t, n in sorted(seeds.count.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
