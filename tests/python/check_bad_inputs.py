#!/usr/bin/python3
"""The bad-input matrix (issue 14, item 6): every file featx reads x every kind of damage.

  /usr/bin/python3 tests/python/check_bad_inputs.py [--binary PATH] [--markdown FILE] [--only READER...]

Rows are the readers (the model, each image format, the .npy inputs of every
command, .fxi, .fxp, .pca, labels, names, --list, extract's resume files,
merge's parts and shard records); columns the damage:

  truncated  cut inside the header, in the middle, one byte short
  bit flip   one bit flipped in the header, in the middle, near the end
  wrong type another format's valid file in its place (a PNG for a model, ...)
  oversized  a header declaring huge dimensions or counts; a file over the
             reader's size limit (sparse) where it has one
  empty      0 bytes
  directory  a directory under the file's name
  missing    no file there

Every valid source is made here: images with PIL, .npy with numpy, .fxi,
.fxp, .pca, shard parts and an interrupted extract by featx itself, models
from the build's test models (FEATX_TEST_MODELS_DIR) or, for declarations
no exporter writes, tools/featx_export's writer. Each damaged file is given
to every command that reads it. A refusal must exit non-zero (no signal),
print exactly one stderr line "featx: error: ..." naming the file, nothing
from a sanitizer, and leave no output under its final name. A damage that
still gives a valid file (a flipped pixel) may be accepted; the output is
then checked. A model must refuse every flip (its CRC-32C). Prints the
matrix as markdown (cells: refused, accepted, BAD: ...); exits 1 on a BAD cell.
--binary runs another featx (e.g. build-asan/featx).
"""

import argparse
import copy
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
from PIL import Image

import featx_cli
import support  # noqa: F401  (the import path to tools/featx_export)
from featx_export import random_model, writer
from featx_export.crc32c import crc32c

DAMAGES = ("truncated", "bit flip", "wrong type", "oversized", "empty", "directory", "missing")
SANITIZERS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "ThreadSanitizer",
              "runtime error:", "Aborted", "terminate called", "Segmentation fault", "core dumped")
MODELS = os.environ.get("FEATX_TEST_MODELS_DIR") or os.path.join(support.REPO_ROOT, "build", "test_models")
FEATURE_MODEL = "random_a0.35_r96_s1_c0.featx"   # has goldens (verify), fast at 96x96
CLASSIFIER_MODEL = "random_a1.0_r224_s1_c10.featx"
GIB = 1 << 30


# ---- valid sources ----------------------------------------------------------

def _photo(h=40, w=48):
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // w, y * 255 // h, (x + y) * 127 // (h + w)], -1) + rng.integers(0, 40, (h, w, 3))
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def _write_npy(path, array):
    np.save(path, np.asarray(array, np.float32))


def _npy_header(shape):
    """An .npy file whose header declares `shape`, with 64 bytes of data."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % (repr(tuple(shape)),)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(64)


def featx(*args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return featx_cli.run(*args, check=False, env=env, cwd=cwd, timeout=300)


def _must(proc, what):
    if proc.returncode != 0:
        raise RuntimeError(f"making the valid {what} failed: {proc.stderr.strip()}")


def make_assets(d):
    """The valid files every reader's case starts from, in directory `d`."""
    shutil.copy(os.path.join(MODELS, FEATURE_MODEL), os.path.join(d, "model.featx"))
    shutil.copy(os.path.join(MODELS, CLASSIFIER_MODEL), os.path.join(d, "cls.featx"))
    img = _photo()
    for ext, fmt in (("jpg", "JPEG"), ("png", "PNG"), ("bmp", "BMP"), ("gif", "GIF"), ("tga", "TGA"), ("ppm", "PPM")):
        img.save(os.path.join(d, "img." + ext), fmt)
    img.resize((32, 36)).save(os.path.join(d, "b.png"))
    rng = np.random.default_rng(3)
    _write_npy(os.path.join(d, "tensor.npy"), rng.random((1, 32, 32, 3)))
    _write_npy(os.path.join(d, "vec.npy"), rng.standard_normal((12, 16)))
    with open(os.path.join(d, "vec.npy.names.txt"), "w") as f:
        f.writelines(f"row{i}.jpg\n" for i in range(12))
    with open(os.path.join(d, "labels.txt"), "w") as f:
        f.writelines(f"{'abc'[i % 3]}\n" for i in range(12))
    with open(os.path.join(d, "cls_labels.txt"), "w") as f:
        f.writelines(f"label {i}\n" for i in range(10))
    with open(os.path.join(d, "list.txt"), "w") as f:
        f.write("img.png\n")
    _must(featx("index", "-o", "vec.fxi", "--quiet", "vec.npy", cwd=d), ".fxi")
    _must(featx("train-probe", "-o", "vec.fxp", "vec.npy", "labels.txt", cwd=d), ".fxp")
    _must(featx("pca", "fit", "-o", "vec.pca", "-k", "4", "vec.npy", cwd=d), ".pca")
    for k in (0, 1):
        _must(featx("extract", "-m", "model.featx", "--quiet", "--shard", f"{k}/2", "-o", f"p{k}.npy",
                    "img.png", "b.png", cwd=d), "shard parts")
    # An interrupted extract: the third input's spatial map has another
    # shape, so the run stops after committing two; then that input is
    # replaced by one that fits and `extract --resume` finishes the job.
    _write_npy(os.path.join(d, "c.npy"), rng.random((64, 64, 3)))
    if featx(*RESUME, cwd=d).returncode == 0:
        raise RuntimeError("the interrupted extract did not stop")
    _write_npy(os.path.join(d, "c.npy"), rng.random((96, 96, 3)))
    for f in ("out.npy.part", "out.npy.names.txt.part", "out.npy.job.part"):
        if not os.path.isfile(os.path.join(d, f)):
            raise RuntimeError(f"the interrupted extract left no {f}")


RESUME = ("extract", "-m", "model.featx", "--pool", "none", "--quiet", "--resume", "-o", "out.npy",
          "img.png", "b.png", "c.npy")


# ---- oversized declarations -------------------------------------------------

def _declaring(obj, **values):
    """A copy of the dataclass `obj` whose properties `values` say something else."""
    cls = type(type(obj).__name__, (type(obj),), {k: property(lambda self, v=v: v) for k, v in values.items()})
    new = copy.copy(obj)
    new.__class__ = cls
    return new


def _model_bytes(change):
    net = random_model.random_network(0.35, 96, 1, classes=4)
    change(net)
    net.validate = lambda: None  # the point is a file the exporter would refuse to write
    return writer.to_bytes(net)


def oversized_models(model):
    def block(net):
        net.blocks[3].in_channels = 1 << 30

    def dense(net):
        net.classifier = None
        w = np.zeros((4, net.feature_dim), np.float32)
        from featx_export import ir
        net.dense_head = [_declaring(ir.Dense("dense", w, None, "softmax"), out_features=1 << 30)]

    data = bytearray(model)
    # The payload vector's length (the ModelFile table's payload field) set to 2^31.
    root = struct.unpack_from("<I", data, 0)[0]
    vtable = root - struct.unpack_from("<i", data, root)[0]
    payload_field = struct.unpack_from("<H", data, vtable + 4 + 2 * 2)[0]  # field 2: payload
    vec = root + payload_field + struct.unpack_from("<I", data, root + payload_field)[0]
    struct.pack_into("<I", data, vec, 1 << 31)
    return [("resolution 100000", _model_bytes(lambda n: setattr(n, "resolution", 100000))),
            ("a block on 2^30 channels", _model_bytes(block)),
            ("classifier of 2^30 classes", _model_bytes(
                lambda n: setattr(n, "classifier", _declaring(n.classifier, num_classes=1 << 30)))),
            ("Dense 1280 -> 2^30", _model_bytes(dense)),
            ("payload length 2^31", bytes(data)),
            ("1 GiB + 1 bytes", ("sparse", model, GIB + 1))]


def _png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _patched(data, *edits):
    b = bytearray(data)
    for offset, fmt, value in edits:
        struct.pack_into(fmt, b, offset, value)
    return bytes(b)


def _jpeg_sof(data):
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack_from(">H", data, i + 2)[0]
        if 0xC0 <= marker <= 0xC2:
            return i
        i += 2 + length
    raise ValueError("no SOF in the JPEG")


def oversized_image(ext, data):
    if ext == "png":
        big = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)) +
               _png_chunk(b"IDAT", zlib.compress(bytes(1000))) + _png_chunk(b"IEND", b""))
        return [("100000x100000 header", big), ("2 GiB + 1 bytes", ("sparse", data, 2 * GIB + 1))]
    if ext == "jpg":
        sof = _jpeg_sof(data)
        return [("65000x65000 header", _patched(data, (sof + 5, ">H", 65000), (sof + 7, ">H", 65000)))]
    if ext == "bmp":
        return [("100000x100000 header", _patched(data, (18, "<i", 100000), (22, "<i", 100000)))]
    if ext == "gif":
        # The logical screen and the first image descriptor (after the global colour table).
        table = 3 * 2 ** ((data[10] & 7) + 1) if data[10] & 0x80 else 0
        desc = 13 + table
        while data[desc] != 0x2C:  # skip extension blocks
            desc += 2
            while data[desc]:
                desc += data[desc] + 1
            desc += 1
        return [("65535x65535 header", _patched(data, (6, "<H", 65535), (8, "<H", 65535),
                                                (desc + 5, "<H", 65535), (desc + 7, "<H", 65535)))]
    if ext == "tga":
        return [("65535x65535 header", _patched(data, (12, "<H", 65535), (14, "<H", 65535)))]
    if ext == "ppm":
        return [("100000x100000 header", b"P6\n100000 100000\n255\n" + bytes(3000))]
    raise ValueError(ext)


def _resealed(data, *edits):
    """`data` (a .fxp or .pca) with header fields changed and its CRC-32C made valid again."""
    b = bytearray(_patched(data, *edits))
    struct.pack_into("<I", b, len(b) - 4, crc32c(bytes(b[:-4])))
    return bytes(b)


# ---- the readers ------------------------------------------------------------

def _load_out_npy(d, name, rows=None):
    """None when `name` (and its names file) is a well-formed output, else the problem."""
    try:
        a = np.load(os.path.join(d, name))
    except Exception as e:  # noqa: BLE001  (any failure to read is the finding)
        return f"{name} unreadable: {e}"
    if a.dtype != np.float32 or not np.all(np.isfinite(a)):
        return f"{name}: dtype {a.dtype} or non-finite values"
    if rows is not None and a.shape[0] != rows:
        return f"{name}: {a.shape[0]} rows, expected {rows}"
    names = os.path.join(d, name + ".names.txt")
    if os.path.exists(names):
        with open(names) as f:
            if len(f.read().splitlines()) != a.shape[0]:
                return f"{name}.names.txt does not name its {a.shape[0]} rows"
    return None


def _ranked(proc, d):
    try:
        results = featx_cli.parse_ranked(proc.stdout)
    except ValueError as e:
        return f"stdout not ranked lines: {e}"
    return None if results and all(r for _, r in results) else "no ranking printed"


def _exists(name):
    return lambda proc, d: None if os.path.isfile(os.path.join(d, name)) else f"no {name} written"


def _ok(proc, d):
    return None


def _extract(target, *flags):
    return (("extract", "-m", "model.featx", "--quiet", *flags, "-o", "out.npy", target),
            ("out.npy", "out.npy.names.txt"), lambda p, d: _load_out_npy(d, "out.npy", 1))


class Reader:
    """One file featx reads: the file in a case directory, the commands reading it
    ((args, outputs that must not appear on a refusal, check of an accepted run)),
    where its header ends, and what may be accepted."""

    def __init__(self, name, target, runs, header=8, wrong="img.png", oversized=None,
                 flips_refused=False, accept=(), text=False, names_entries=False):
        self.name, self.target, self.runs, self.header = name, target, runs, header
        self.wrong, self.oversized = wrong, oversized
        self.flips_refused = flips_refused  # a checksum covers every byte
        self.accept = accept                # damages featx may take (missing: it goes on without it)
        self.text = text                    # a text file: another format's bytes may be a valid one
        self.names_entries = names_entries  # a list of paths: an error may name an entry instead


def readers():
    model_runs = [(("inspect", "model.featx"), (), _ok),
                  (("verify", "model.featx"), (), _ok),
                  _extract("img.png"),
                  (("bench", "-m", "model.featx", "--runs", "1", "--warmup", "0"), (), _ok)]
    rs = [Reader("model (.featx): inspect, verify, extract, bench", "model.featx", model_runs, header=6,
                 oversized=oversized_models, flips_refused=True)]
    headers = {"jpg": 20, "png": 20, "bmp": 20, "gif": 10, "tga": 12, "ppm": 8}
    names = {"jpg": "JPEG", "png": "PNG", "bmp": "BMP", "gif": "GIF", "tga": "TGA", "ppm": "PNM"}
    for ext in headers:
        rs.append(Reader(f"image {names[ext]}: extract", f"img.{ext}", [_extract(f"img.{ext}")], header=headers[ext],
                         wrong="vec.npy", oversized=lambda data, ext=ext: oversized_image(ext, data)))
    huge_rows = lambda data: [("shape (2^40, 16)", _npy_header((1 << 40, 16))),  # noqa: E731
                              ("shape (12, 2^40)", _npy_header((12, 1 << 40)))]
    rs.append(Reader("image tensor .npy: extract", "tensor.npy", [_extract("tensor.npy")], header=30,
                     oversized=lambda data: [("shape (2^40, 224, 224, 3)", _npy_header((1 << 40, 224, 224, 3)))]))
    vector_runs = {
        "index": (("index", "-o", "out.fxi", "--quiet", "vec.npy"), ("out.fxi",), _exists("out.fxi")),
        "pca fit": (("pca", "fit", "-o", "out.pca", "-k", "4", "vec.npy"), ("out.pca",), _exists("out.pca")),
        "pca transform": (("pca", "transform", "-m", "vec.pca", "-o", "out.npy", "vec.npy"),
                          ("out.npy", "out.npy.names.txt"), lambda p, d: _load_out_npy(d, "out.npy", 12)),
        "train-probe": (("train-probe", "-o", "out.fxp", "vec.npy", "labels.txt"), ("out.fxp",), _exists("out.fxp")),
        "classify --probe": (("classify", "--probe", "vec.fxp", "vec.npy"), (), _ranked),
        "search": (("search", "-i", "vec.fxi", "vec.npy"), (), _ranked),
    }
    for what, run in vector_runs.items():
        rs.append(Reader(f"vectors .npy: {what}", "vec.npy", [run], header=30, wrong="vec.fxi", oversized=huge_rows))
    merge = (("merge", "-o", "m.npy", "p0.npy", "p1.npy"), ("m.npy", "m.npy.names.txt", "m.npy.errors.txt"),
             lambda p, d: _load_out_npy(d, "m.npy", 2))
    rs.append(Reader("shard part .npy: merge", "p0.npy", [merge], header=30,
                     oversized=lambda data: [("shape (2^40, 1280)", _npy_header((1 << 40, 1280)))]))
    rs.append(Reader("shard record (.shard.txt): merge", "p0.npy.shard.txt", [merge], header=12, text=True))
    rs.append(Reader("part names (.names.txt): merge", "p0.npy.names.txt", [merge], header=4, text=True))
    rs.append(Reader("vector names (.names.txt): index", "vec.npy.names.txt", [vector_runs["index"]], header=4,
                     text=True, accept=("missing",)))
    search = (("search", "-i", "vec.fxi", "vec.npy"), (), _ranked)
    rs.append(Reader("index (.fxi): search", "vec.fxi", [search], header=40, wrong="vec.fxp",
                     oversized=lambda data: [("count 2^40", _patched(data, (24, "<Q", 1 << 40))),
                                             ("dims 2^31", _patched(data, (16, "<I", 1 << 31)))]))
    rs.append(Reader("probe (.fxp): classify --probe", "vec.fxp", [vector_runs["classify --probe"]], header=40,
                     wrong="vec.pca", flips_refused=True,
                     oversized=lambda data: [("dims 2^40 (CRC valid)", _resealed(data, (24, "<Q", 1 << 40))),
                                             ("2^31 classes (CRC valid)", _resealed(data, (20, "<I", 1 << 31)))]))
    rs.append(Reader("PCA (.pca): pca transform", "vec.pca", [vector_runs["pca transform"]], header=30,
                     wrong="vec.fxp", flips_refused=True,
                     oversized=lambda data: [("dims 2^40 (CRC valid)", _resealed(data, (16, "<Q", 1 << 40))),
                                             ("2^40 components (CRC valid)", _resealed(data, (24, "<Q", 1 << 40)))]))
    classify = (("classify", "-m", "cls.featx", "--labels", "cls_labels.txt", "img.png"), (), _ranked)
    rs.append(Reader("labels: classify --labels", "cls_labels.txt", [classify], header=4, text=True))
    rs.append(Reader("labels: train-probe", "labels.txt", [vector_runs["train-probe"]], header=2, text=True,
                     oversized=lambda data: [("1 GiB + 1 bytes", ("sparse", data, GIB + 1))]))
    rs.append(Reader("input list: extract --list", "list.txt",
                     [(("extract", "-m", "model.featx", "--quiet", "--list", "list.txt", "-o", "out.npy"),
                       ("out.npy", "out.npy.names.txt"), lambda p, d: _load_out_npy(d, "out.npy", 1))],
                     header=3, text=True, names_entries=True))
    resume = (RESUME, ("out.npy", "out.npy.names.txt"), lambda p, d: _load_out_npy(d, "out.npy", 3))
    # Without a job file there is nothing to resume, without rows nothing was
    # committed, an empty names file commits nothing: each starts over.
    rs.append(Reader("extract job (.job.part): extract --resume", "out.npy.job.part", [resume], header=10,
                     text=True, accept=("missing",)))
    rs.append(Reader("extract rows (.npy.part): extract --resume", "out.npy.part", [resume], header=30,
                     accept=("missing",), oversized=lambda data: [("shape (2^40, 3, 3, 1280)",
                                                             _npy_header((1 << 40, 3, 3, 1280)))]))
    rs.append(Reader("extract names (.names.txt.part): extract --resume", "out.npy.names.txt.part", [resume],
                     header=4, text=True, accept=("empty",)))
    return rs


# ---- damage -----------------------------------------------------------------

def variants(reader, data, assets):
    """{damage: [(label, content)]}; content: bytes, ("sparse", head, size), "dir" or None (missing)."""
    n = len(data)
    cuts = sorted({min(reader.header, n - 1), n // 2, n - 1})
    flips = sorted({min(reader.header // 2, n - 1), n // 2, max(0, n - 6)})

    def flipped(i):
        b = bytearray(data)
        b[i] ^= 0x10
        return bytes(b)

    with open(os.path.join(assets, reader.wrong), "rb") as f:
        wrong = f.read()
    return {
        "truncated": [(f"cut at {c}", data[:c]) for c in cuts],
        "bit flip": [(f"flip at {i}", flipped(i)) for i in flips],
        "wrong type": [(f"{reader.wrong} in its place", wrong)],
        "oversized": reader.oversized(data) if reader.oversized else [],
        "empty": [("0 bytes", b"")],
        "directory": [("a directory", "dir")],
        "missing": [("no file", None)],
    }


def place(path, content):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)
    if content is None:
        return
    if content == "dir":
        os.mkdir(path)
        return
    if isinstance(content, tuple):  # ("sparse", head, size): a large file without the disk space
        _, head, size = content
        with open(path, "wb") as f:
            f.write(head)
            f.truncate(size)
        return
    with open(path, "wb") as f:
        f.write(content)


def judge(reader, damage, content, proc, d, outputs, check):
    """("refused" | "accepted", detail) or ("BAD", why)."""
    if isinstance(proc, str):
        return "BAD", proc
    err = proc.stderr
    for s in SANITIZERS:
        if s in err:
            return "BAD", f"'{s}' on stderr"
    if proc.returncode < 0 or proc.returncode >= 128:
        return "BAD", f"exit {proc.returncode} (a signal)"
    if proc.returncode != 0:
        lines = err.strip().splitlines()
        if len(lines) != 1:
            return "BAD", f"{len(lines)} stderr lines: {' | '.join(lines[:3])}"
        if not lines[0].startswith("featx: error: "):
            return "BAD", f"not a featx error line: {lines[0]}"
        named = [reader.target]
        if reader.names_entries and isinstance(content, bytes):
            named += [e for e in content.decode(errors="replace").splitlines() if e]
        if not any(n in lines[0] for n in named):
            return "BAD", f"does not name {reader.target}: {lines[0]}"
        left = [o for o in outputs if os.path.lexists(os.path.join(d, o))]
        if left:
            return "BAD", f"left {', '.join(left)}: {lines[0]}"
        return "refused", lines[0]
    must_refuse = damage in ("empty", "directory", "oversized", "missing") or \
        (damage == "bit flip" and reader.flips_refused) or (damage == "wrong type" and not reader.text)
    if must_refuse and damage not in reader.accept:
        return "BAD", "accepted"
    if err.strip():
        return "BAD", f"accepted, stderr: {err.strip().splitlines()[0]}"
    problem = check(proc, d)
    return ("BAD", f"accepted, {problem}") if problem else ("accepted", "")


def run_reader(reader, assets, work, log):
    with open(os.path.join(assets, reader.target), "rb") as f:
        data = f.read()
    cells = {}
    for damage, cases in variants(reader, data, assets).items():
        if not cases:
            cells[damage] = "n/a"
            continue
        verdicts = []
        for label, content in cases:
            for args, outputs, check in reader.runs:
                d = os.path.join(work, "case")
                shutil.rmtree(d, ignore_errors=True)
                shutil.copytree(assets, d, symlinks=True)
                place(os.path.join(d, reader.target), content)
                try:
                    proc = featx(*args, cwd=d)
                except subprocess.TimeoutExpired:
                    proc = "timed out (300 s)"
                verdict, detail = judge(reader, damage, content, proc, d, outputs, check)
                log.write(f"{reader.name} | {damage} | {label} | featx {' '.join(args)} | {verdict} | {detail}\n")
                verdicts.append((verdict, f"{label}, {args[0]}: {detail}"))
        bad = [v for v in verdicts if v[0] == "BAD"]
        kinds = sorted({v[0] for v in verdicts})
        cells[damage] = f"BAD: {bad[0][1]}" if bad else " / ".join(kinds)
    return cells


def table(rows):
    out = ["| reader | " + " | ".join(DAMAGES) + " |", "|---" * (len(DAMAGES) + 1) + "|"]
    for name, cells in rows:
        out.append(f"| {name} | " + " | ".join(cells[d].replace("|", "\\|") for d in DAMAGES) + " |")
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", help="the featx to test (default: FEATX_BIN, else build/featx)")
    ap.add_argument("--markdown", help="also write the table to this file")
    ap.add_argument("--only", nargs="*", default=[], help="readers whose name contains one of these")
    ap.add_argument("--log", help="one line per run (default: in the work directory, removed)")
    args = ap.parse_args(argv)
    if args.binary:
        os.environ["FEATX_BIN"] = os.path.abspath(args.binary)
    if not os.path.isfile(os.path.join(MODELS, FEATURE_MODEL)):
        print(f"*** SKIPPED: no test models in {MODELS} (build featx_test_models or set FEATX_TEST_MODELS_DIR)")
        return 0
    featx_cli.binary()
    with tempfile.TemporaryDirectory(prefix="featx_bad_") as work:
        assets = os.path.join(work, "assets")
        os.mkdir(assets)
        make_assets(assets)
        rows = []
        with open(args.log or os.path.join(work, "log.txt"), "w") as log:
            for reader in readers():
                if args.only and not any(o in reader.name for o in args.only):
                    continue
                rows.append((reader.name, run_reader(reader, assets, work, log)))
                print(f"{reader.name}: {'BAD' if any(c.startswith('BAD') for c in rows[-1][1].values()) else 'ok'}",
                      file=sys.stderr, flush=True)
    text = table(rows)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    bad = sum(c.startswith("BAD") for _, cells in rows for c in cells.values())
    print(f"{len(rows)} readers x {len(DAMAGES)} damages: {bad} BAD cell(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
