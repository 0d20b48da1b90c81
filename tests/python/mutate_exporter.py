"""The exporter's readers against damaged files: every case is an export or a
one-line error naming the file and the problem, never a traceback, a hang
or a bare Python error.

Sources: a small random MobileNetV2 (0.35/96 with a Dense head) written by
the test writers as each input the exporter reads: .tflite (float and
int8), Keras 2 .h5 (whole model), Keras 3 .keras archive, .weights.h5 with
a config, and a Keras SavedModel folder. Mutations of each:
  truncate  the file cut at offsets spread over it (0, 1, 7, ... n-1)
  flip      one bit flipped, at seeded random offsets
  smash     8 bytes set to 0x00 / 0xFF / a large integer at random offsets
  shape     (HDF5, .keras, SavedModel) a weight stored transposed, with a
            dimension dropped, or as a scalar
  dtype     (HDF5, .keras) a weight stored as int32, float16 or text
  config    (.keras, .h5) the model config with a field of the wrong type,
            a layer removed or the JSON cut short
  missing   (SavedModel) a member file removed or emptied
Each case runs export_weights.main() in this process (-o OUT.featx), with
an alarm (FEATX_MUTATE_TIMEOUT, 30 s) and the address space limited to
FEATX_MUTATE_MEMORY_GB (6): a reader that believes a damaged size and
allocates for it meets MemoryError, which must surface as a proper error
too. Outcomes:
  exported  exit 0 and the written .featx reads back (reader.read_featx)
  refused   exit 2, one line "export_weights: error: ...", the damaged
            file's path in it, no Python exception text standing alone
  BAD       anything else (printed with the case; the run fails)

  /usr/bin/python3 tests/python/mutate_exporter.py [--cases N] [--seed S] [--only KIND]
(--debug: each bad case runs again with FEATX_DEBUG=1 and prints its traceback.)
ctest (exporter_mutations) runs the default, a few hundred cases; the
campaign (scripts/fuzz_campaign.sh, docs/RELIABILITY.md) runs --cases 2000.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import re
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402,F401  (import path of tools/)

import keras_writers as kw  # noqa: E402
from featx_export import reader  # noqa: E402
from featx_export.keras_saved_model_writer import write_keras_saved_model  # noqa: E402
from featx_export.random_model import random_network  # noqa: E402
from featx_export.tflite_writer import write_tflite  # noqa: E402

sys.path.insert(0, support.TOOLS)
import export_weights  # noqa: E402

ROWS = 96
PREFIX = "export_weights: error: "
# An exception's own text standing for the whole message: what a reader
# lets escape when it did not check something.
BARE = re.compile(r"^(list |tuple |string )?index out of range|^unpack requires|object has no attribute|"
                  r"^'NoneType'|not subscriptable|^[A-Z][A-Za-z]*(Error|Exception)$|^division by zero|"
                  r"^invalid literal|referenced before assignment|^cannot reshape|could not broadcast|"
                  r"^maximum recursion depth|^Unable to (open|synchronously)")


class Timeout(BaseException):
    """Raised by the alarm; a BaseException so main()'s `except Exception` cannot swallow it."""


def _alarm(signum, frame):
    raise Timeout()


# -- sources -----------------------------------------------------------------

def make_sources(tmp: str) -> dict:
    """kind -> (path, extra export arguments); each a real file of that kind."""
    net = random_network(0.35, ROWS, seed=3, dense="embedding_layer=16:relu,5:softmax")
    base = random_network(0.35, ROWS, seed=4)
    sources = {}
    path = os.path.join(tmp, "float.tflite")
    write_tflite(base, path)
    sources["tflite"] = (path, [])
    path = os.path.join(tmp, "int8.tflite")
    write_tflite(base, path, quantization="int8")
    sources["tflite-int8"] = (path, [])
    path = os.path.join(tmp, "model.h5")
    kw.keras2_h5(path, kw.sequential_model(net))
    sources["h5"] = (path, [])
    path = os.path.join(tmp, "model.keras")
    kw.keras_archive(path, kw.functional_nested(net))
    sources["keras"] = (path, [])
    path = os.path.join(tmp, "model.weights.h5")
    model = kw.functional_nested(net)
    kw.weights_h5(path, model)
    config = os.path.join(tmp, "config.json")
    with open(config, "w") as f:
        f.write(kw.archive_config_json(model))
    sources["weights-h5"] = (path, ["--keras-config", config])
    path = os.path.join(tmp, "saved_model")
    write_keras_saved_model(path, net)
    sources["saved-model"] = (path, [])
    return sources


# -- mutations ---------------------------------------------------------------

def _offsets(n: int, count: int, rng: random.Random):
    fixed = [0, 1, 7, 8, 15, 16, 31, 64, n // 2, n - 1]
    spread = [rng.randrange(n) for _ in range(max(0, count - len(fixed)))]
    return sorted({o for o in fixed + spread if 0 <= o < n})[:count]


def byte_mutations(data: bytes, rng: random.Random, count: int):
    """(name, new bytes) for truncations, bit flips and smashed words."""
    n = len(data)
    for at in _offsets(n, count, rng):
        yield f"truncate@{at}", data[:at]
    for _ in range(count):
        at = rng.randrange(n)
        bit = rng.randrange(8)
        b = bytearray(data)
        b[at] ^= 1 << bit
        yield f"flip@{at}.{bit}", bytes(b)
    for _ in range(count):
        at = rng.randrange(max(1, n - 8))
        value = rng.choice([b"\x00" * 8, b"\xff" * 8, struct.pack("<q", 1 << 40), struct.pack("<i", -1) * 2])
        b = bytearray(data)
        b[at:at + 8] = value[: n - at]
        yield f"smash@{at}", bytes(b)


def _h5_datasets(path: str):
    import h5py
    names = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) and obj.ndim >= 1 else None)
    return names


def h5_mutations(path: str, rng: random.Random, count: int, work: str):
    """(name, new file) with one weight stored with a wrong shape or dtype."""
    import h5py
    import numpy as np
    datasets = _h5_datasets(path)
    for i in range(count):
        target = rng.choice(datasets)
        how = ["transpose", "drop-dim", "scalar", "int32", "float16", "text", "empty"][i % 7]
        out = os.path.join(work, f"h5_{i}{os.path.splitext(path)[1] if not path.endswith('.weights.h5') else '.weights.h5'}")
        shutil.copyfile(path, out)
        with h5py.File(out, "r+") as f:
            value = f[target][()]
            attrs = dict(f[target].attrs)
            del f[target]
            if how == "transpose":
                value = value.T if value.ndim > 1 else value[::-1][:-1]
            elif how == "drop-dim":
                value = value[..., 0] if value.ndim > 1 else value[:1]
            elif how == "scalar":
                value = np.float32(1.5)
            elif how == "int32":
                value = value.astype(np.int32)
            elif how == "float16":
                value = value.astype(np.float16)
            elif how == "text":
                value = np.array([b"not a weight"])
            else:
                value = np.zeros((0,), np.float32)
            f.create_dataset(target, data=value)
            for k, v in attrs.items():
                f[target].attrs[k] = v
        yield f"{'shape' if how in ('transpose', 'drop-dim', 'scalar', 'empty') else 'dtype'}:{how}:{target}", out


def _config_edits(config: dict, rng: random.Random):
    """A few damaged copies of a Keras model config (a JSON dict)."""
    text = json.dumps(config)
    yield "config:cut", text[: len(text) // 2]
    yield "config:not-json", "{" + text[:40]
    yield "config:list", "[]"
    for kind in ("drop-layer", "filters-text", "kernel-size-null", "no-class", "strides-huge"):
        c = json.loads(text)
        holder = c.get("config", c)
        layers = holder.get("layers") if isinstance(holder, dict) else None
        if not layers:
            continue
        i = rng.randrange(len(layers))
        if kind == "drop-layer":
            del layers[i]
        elif kind == "no-class":
            layers[i].pop("class_name", None)
        else:
            # the first layer config with that field, from a random start
            for layer in layers[i:] + layers[:i]:
                cfg = layer.get("config", {})
                key = {"filters-text": "filters", "kernel-size-null": "kernel_size", "strides-huge": "strides"}[kind]
                if key in cfg:
                    cfg[key] = {"filters-text": "many", "kernel-size-null": None, "strides-huge": [1 << 40, 1]}[kind]
                    break
        yield f"config:{kind}", json.dumps(c)


def keras_archive_mutations(path: str, rng: random.Random, count: int, work: str):
    """(name, new .keras): its config.json or its weights damaged inside an intact zip."""
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    config = json.loads(members["config.json"])

    def write(name, replace):
        out = os.path.join(work, f"{name.replace(':', '_').replace('/', '_')}.keras")
        with zipfile.ZipFile(out, "w") as z:
            for n, data in members.items():
                z.writestr(n, replace.get(n, data))
        return out

    for name, text in _config_edits(config, rng):
        yield name, write(name, {"config.json": text})
    weights = os.path.join(work, "inner.weights.h5")
    with open(weights, "wb") as f:
        f.write(members["model.weights.h5"])
    for name, damaged in h5_mutations(weights, rng, count, work):
        with open(damaged, "rb") as f:
            yield name, write(name, {"model.weights.h5": f.read()})
    yield "missing:model.weights.h5", write("nomember", {"model.weights.h5": b""})


def h5_config_mutations(path: str, rng: random.Random, work: str):
    """(name, new .h5) whose model_config attribute is damaged."""
    import h5py
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
    for i, (name, text) in enumerate(_config_edits(config, rng)):
        out = os.path.join(work, f"cfg_{i}.h5")
        shutil.copyfile(path, out)
        with h5py.File(out, "r+") as f:
            f.attrs["model_config"] = text
        yield name, out


def saved_model_mutations(path: str, rng: random.Random, count: int, work: str):
    """(name, new folder): a member file damaged byte-wise, emptied or removed."""
    members = []
    for root, _, files in os.walk(path):
        members += [os.path.relpath(os.path.join(root, f), path) for f in files]
    members.sort()
    for i, member in enumerate(members):
        for how in ("missing", "empty"):
            out = os.path.join(work, f"sm_{how}_{i}")
            shutil.copytree(path, out)
            if how == "missing":
                os.remove(os.path.join(out, member))
            else:
                open(os.path.join(out, member), "wb").close()
            yield f"missing:{how}:{member}", out
    per_member = max(1, count // max(1, len(members)))
    for i, member in enumerate(members):
        with open(os.path.join(path, member), "rb") as f:
            data = f.read()
        if not data:
            continue
        for j, (name, damaged) in enumerate(byte_mutations(data, rng, per_member)):
            out = os.path.join(work, f"sm_{i}_{j}")
            shutil.copytree(path, out)
            with open(os.path.join(out, member), "wb") as f:
                f.write(damaged)
            yield f"{name}:{member}", out


def cases(kind: str, path: str, rng: random.Random, count: int, work: str):
    """(mutation name, damaged input path) for one source."""
    if kind == "saved-model":
        yield from saved_model_mutations(path, rng, count, work)
        return
    with open(path, "rb") as f:
        data = f.read()
    suffix = ".weights.h5" if path.endswith(".weights.h5") else os.path.splitext(path)[1]
    for i, (name, damaged) in enumerate(byte_mutations(data, rng, count)):
        out = os.path.join(work, f"bytes_{i}{suffix}")
        with open(out, "wb") as f:
            f.write(damaged)
        yield name, out
    if kind in ("h5", "weights-h5"):
        yield from h5_mutations(path, rng, count, work)
    if kind == "h5":
        yield from h5_config_mutations(path, rng, work)
    if kind == "keras":
        yield from keras_archive_mutations(path, rng, count, work)


# -- running -----------------------------------------------------------------

def run_case(source_flag: str, damaged: str, extra, out: str, timeout: int):
    """(outcome, message): outcome in exported / refused / BAD."""
    err = io.StringIO()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = export_weights.main([source_flag, damaged, *extra, "-o", out])
    except Timeout:
        return "BAD", f"no answer within {timeout} s"
    except SystemExit as e:  # argparse and friends
        code = e.code
    except BaseException as e:  # noqa: BLE001 - anything escaping main() is the finding
        if os.environ.get("FEATX_DEBUG"):  # main() re-raised: where it came from
            traceback.print_exc()
        return "BAD", f"escaped main(): {type(e).__name__}: {e}"
    finally:
        signal.alarm(0)
    lines = [line for line in err.getvalue().splitlines() if not line.startswith("export_weights: kept")
             and not line.startswith("export_weights: skipped") and not line.startswith("export_weights: read")]
    errors = [line for line in lines if line.startswith(PREFIX)]
    if code == 0:
        if errors:
            return "BAD", f"exit 0 with an error line: {errors[0]}"
        try:
            reader.read_featx(out)
        except Exception as e:  # noqa: BLE001
            return "BAD", f"exported a file that does not read back: {e}"
        return "exported", ""
    text = err.getvalue()
    if "Traceback" in text:
        return "BAD", "traceback: " + text.strip().splitlines()[-1]
    if code != 2 or len(errors) != 1:
        return "BAD", f"exit {code}, stderr {text.strip()!r}"
    message = errors[0][len(PREFIX):]
    if damaged not in message:
        return "BAD", f"does not name the file: {message}"
    rest = message.split(damaged, 1)[1].lstrip(":/ ")
    rest = re.sub(r"^[^:]*: ", "", rest) if rest.startswith(("variables", "saved_model", "keras_metadata",
                                                             "fingerprint", "assets")) else rest
    if BARE.search(rest):
        return "BAD", f"a bare Python error: {message}"
    return "refused", message


SOURCE_FLAGS = {"tflite": "--tflite", "tflite-int8": "--tflite", "h5": "--keras", "keras": "--keras",
                "weights-h5": "--keras", "saved-model": "--saved-model"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=24, help="mutations of each sort per source (default 24)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--only", choices=sorted(SOURCE_FLAGS), action="append")
    p.add_argument("--verbose", action="store_true", help="print every refusal too")
    p.add_argument("--debug", action="store_true", help="print each bad case's traceback")
    args = p.parse_args(argv)
    timeout = int(os.environ.get("FEATX_MUTATE_TIMEOUT", "30"))
    memory = float(os.environ.get("FEATX_MUTATE_MEMORY_GB", "6"))
    resource.setrlimit(resource.RLIMIT_AS, (int(memory * (1 << 30)), resource.getrlimit(resource.RLIMIT_AS)[1]))
    rng = random.Random(args.seed)
    start = time.time()
    bad = 0
    table = []
    with tempfile.TemporaryDirectory(prefix="featx_mutate_") as tmp:
        sources = make_sources(tmp)
        for kind in args.only or sorted(sources):
            path, extra = sources[kind]
            # The undamaged file exports: the mutations start from something that works.
            outcome, message = run_case(SOURCE_FLAGS[kind], path, extra, os.path.join(tmp, "ok.featx"), timeout)
            if outcome != "exported":
                print(f"BAD {kind}: the undamaged source does not export: {message}")
                return 1
            counts = {}
            work = os.path.join(tmp, kind)
            os.mkdir(work)
            t0 = time.time()
            for name, damaged in cases(kind, path, rng, args.cases, work):
                outcome, message = run_case(SOURCE_FLAGS[kind], damaged, extra, os.path.join(work, "out.featx"),
                                            timeout)
                sort = name.split("@")[0].split(":")[0]
                counts.setdefault(sort, {"exported": 0, "refused": 0, "BAD": 0})[outcome] += 1
                if outcome == "BAD":
                    bad += 1
                    print(f"BAD {kind} {name}: {message}")
                    if args.debug:  # again, with export_weights re-raising: the traceback
                        os.environ["FEATX_DEBUG"] = "1"
                        run_case(SOURCE_FLAGS[kind], damaged, extra, os.path.join(work, "out.featx"), timeout)
                        del os.environ["FEATX_DEBUG"]
                elif args.verbose and outcome == "refused":
                    print(f"ok  {kind} {name}: {message}")
                if os.path.isdir(damaged):
                    shutil.rmtree(damaged)
                elif os.path.exists(damaged):
                    os.remove(damaged)
            for sort, c in sorted(counts.items()):
                table.append((kind, sort, sum(c.values()), c["exported"], c["refused"], c["BAD"]))
            print(f"{kind}: {sum(sum(c.values()) for c in counts.values())} cases in {time.time() - t0:.0f} s",
                  flush=True)
    print("| source | mutation | cases | exported | refused (one line, names the file) | bad |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in table:
        print("| " + " | ".join(str(v) for v in row) + " |")
    total = sum(row[2] for row in table)
    print(f"{total} cases, {bad} bad, {time.time() - start:.0f} s (seed {args.seed}, --cases {args.cases})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
