#!/usr/bin/python3
"""Side-by-side benchmark: featx vs ONNX Runtime vs XNNPACK on the same weights.

    /usr/bin/python3 bench/run_bench.py [--rounds 5] [--runs 20] [--build-dir bench/out/featx-build]
                                        [--write bench/RESULTS.md] [--quick]

Steps (all outputs under bench/out/, which is disposable):
  1. build: featx (Release, cmake --build BUILD_DIR --target featx_cli), the XNNPACK
     runner and the FMA peak probe (g++, see build_tools()).
  2. export each model once with tools/export_weights.py (.featx + .onnx).
  3. per configuration row (model x batch x threads): the same-features check
     first -- featx extract on an .npy of featx bench's LCG pixels, ORT and
     XNNPACK on their built-in copy of the same LCG pixels -- max |diff| vs
     featx must be <= 1e-4 or the script stops (exit 1). Because the peers
     generate their pixels themselves, a passing check also proves all three
     time the very input that was checked.
  4. timing, interleaved: ROUNDS rounds, each running featx bench, ort_bench
     and xnnpack_runner once (RUNS timed forward passes after 3 warm-ups,
     one process each); the start of the order rotates every round so no
     runtime always follows the same neighbour. Reported: the median of the
     rounds' medians, and the spread of the round medians.
  5. model load (featx bench's model_load_ms, median of 7 processes), peak RSS
     of `featx extract` on one image (GNU time %M), per-layer profile
     (featx bench --profile, top 15), single-core FMA peak (fma_peak).
Then prints the Markdown report, and writes it with --write.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SHARED = ROOT.parent / "shared"
OUT = BENCH / "out"
PY = "/usr/bin/python3"
TOLERANCE = 1e-4
WARMUP = 3

MODELS = [
    # key, label, exporter arguments
    ("tf2_224", "1.0/224 (TF2 .tflite)",
     ["--tflite", str(SHARED / "models" / "tf2_mobilenet_v2_1.0_224_ptq.tflite")]),
    ("r035_160", "0.35/160 (random, seed 1)",
     ["--random", "--alpha", "0.35", "--resolution", "160", "--seed", "1"]),
]
CONFIGS = [(1, 1), (1, 2), (8, 2)]  # (batch, threads)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    """Runs a command, returns stdout; a failure stops the benchmark loudly."""
    cmd = [str(c) for c in cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        log(f"FAILED ({r.returncode}): {shlex.join(map(str, cmd))}\n{r.stdout}{r.stderr}")
        sys.exit(1)
    return r.stdout


def values(text):
    """`key value` lines -> dict of floats (other lines ignored)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+) (-?[0-9.]+)$", line.strip())
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def build_tools(build_dir):
    OUT.mkdir(exist_ok=True)
    log(f"building featx in {build_dir} ...")
    if not (build_dir / "CMakeCache.txt").exists():
        run(["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release", "-DFEATX_BUILD_TESTS=OFF"])
    run(["cmake", "--build", build_dir, "-j2", "--target", "featx_cli"])
    # Same optimisation level as featx's Release build (-O3); no -march, as for
    # featx: XNNPACK picks its own kernels at run time from cpuinfo.
    log("building xnnpack_runner and fma_peak ...")
    run(["g++", "-O3", "-std=c++17", f"-I{ROOT / 'include'}", BENCH / "xnnpack_runner.cpp",
         "-o", OUT / "xnnpack_runner", "-fopenmp", "-lXNNPACK", "-lpthreadpool"])
    run(["g++", "-O2", "-std=c++17", BENCH / "fma_peak.cpp", "-o", OUT / "fma_peak"])
    if not (ROOT / "tools" / "ort" / "node_modules" / "onnxruntime-node").exists():
        log("installing onnxruntime-node in tools/ort ...")
        run(["npm", "install", "--ignore-scripts"], cwd=ROOT / "tools" / "ort")


def export_models():
    for key, _, args in MODELS:
        featx_path, onnx_path = OUT / f"{key}.featx", OUT / f"{key}.onnx"
        log(f"exporting {key} ...")
        run([PY, ROOT / "tools" / "export_weights.py", *args, "-o", featx_path, "--onnx", onnx_path])


_LCG_CACHE = {}


def lcg_pixels(n):
    """The pixels `featx bench` feeds (and the peers generate): see cmd_bench.hpp."""
    # The stream is the same for every batch size: compute the longest once.
    for m, v in _LCG_CACHE.items():
        if m >= n:
            return v[:n]
    out = np.empty(n, dtype=np.float32)
    state = 12345
    for i in range(n):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        out[i] = np.float32(state >> 8) / np.float32(1 << 24)
    _LCG_CACHE[n] = out
    return out


def layer_table(featx_bin, model):
    """Conv layers from `featx inspect` -> [(name, flops per image)]."""
    text = run([featx_bin, "inspect", model])
    res = int(re.search(r"resolution (\d+)", text).group(1))
    h = w = res
    rows = []
    for m in re.finditer(r"^\s+(\S+)\s+(conv|depthwise)\s+(\d+)x(\d+) s(\d+)\s+(\d+) -> (\d+)", text, re.M):
        name, kind = m.group(1), m.group(2)
        kh, kw, s, ci, co = (int(m.group(i)) for i in range(3, 8))
        h, w = -(-h // s), -(-w // s)  # TF SAME: ceil(in / stride)
        macs = h * w * kh * kw * (ci if kind == "depthwise" else ci * co)
        rows.append((name, 2 * macs))
    return res, rows


def same_features(bins, key, res, batch, threads):
    """All three runtimes on the same pixels; returns max |diff| of ORT and XNNPACK vs featx."""
    lcg_pixels(max(b for b, _ in CONFIGS) * res * res * 3)
    x = lcg_pixels(batch * res * res * 3).reshape(batch, res, res, 3)
    inp = OUT / f"check_{key}_b{batch}.npy"
    np.save(inp, x)
    tag = f"{key}_b{batch}_t{threads}"
    f_out, o_out, x_out = OUT / f"featx_{tag}.npy", OUT / f"ort_{tag}.npy", OUT / f"xnn_{tag}.npy"
    run([bins["featx"], "extract", "-m", OUT / f"{key}.featx", "--threads", threads, "--batch", batch,
         "-o", f_out, inp])
    run(["node", BENCH / "ort_bench.mjs", "-m", OUT / f"{key}.onnx", "--threads", threads,
         "--batch", batch, "--runs", 1, "--warmup", 0, "--dump", o_out])
    run([bins["xnnpack"], "-m", OUT / f"{key}.featx", "--threads", threads, "--batch", batch,
         "--runs", 1, "--warmup", 0, "--dump", x_out])
    ref = np.load(f_out)
    diffs = {}
    for name, path in (("ort", o_out), ("xnnpack", x_out)):
        got = np.load(path)
        if got.shape != ref.shape:
            log(f"SAME-FEATURES CHECK FAILED: {name} shape {got.shape} vs featx {ref.shape} ({tag})")
            sys.exit(1)
        diffs[name] = float(np.max(np.abs(got.astype(np.float64) - ref)))
        if not diffs[name] <= TOLERANCE:
            log(f"SAME-FEATURES CHECK FAILED: {name} vs featx max |diff| {diffs[name]:.3g} > {TOLERANCE} ({tag})")
            sys.exit(1)
    return diffs


def busy_cpus(seconds=0.5, samples=10):
    """Mean number of other runnable tasks (procs_running minus this one) over a short window."""
    total = 0
    for _ in range(samples):
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("procs_running"):
                total += max(0, int(line.split()[1]) - 1)
        time.sleep(seconds / samples)
    return total / samples


def wait_quiet(limit_s):
    """Waits (up to limit_s) until no other task wants a CPU; returns the busy level seen last."""
    deadline = time.time() + limit_s
    level = busy_cpus()
    while level > 0.2 and time.time() < deadline:
        time.sleep(2)
        level = busy_cpus()
    return level


def time_row(bins, key, batch, threads, rounds, runs, quiet_s):
    common = ["--threads", threads, "--batch", batch, "--runs", runs, "--warmup", WARMUP]
    cmds = {
        "featx": ([bins["featx"], "bench", "-m", OUT / f"{key}.featx", *common], "featx_ms_median"),
        "ort": (["node", BENCH / "ort_bench.mjs", "-m", OUT / f"{key}.onnx", *common], "ort_ms_median"),
        "xnnpack": ([bins["xnnpack"], "-m", OUT / f"{key}.featx", *common], "xnnpack_ms_median"),
    }
    order = list(cmds)
    medians = {k: [] for k in cmds}
    mins = {k: [] for k in cmds}
    extra = {"isa": None, "ort_load_ms": [], "xnnpack_setup_ms": [], "busy": []}
    for r in range(rounds):
        # A neighbour stealing one of two cores ruins a 2-thread measurement;
        # wait for quiet, and record how busy the machine was either way.
        extra["busy"].append(wait_quiet(quiet_s) if quiet_s > 0 else busy_cpus())
        for name in order[r % 3:] + order[:r % 3]:
            cmd, field = cmds[name]
            text = run(cmd)
            v = values(text)
            medians[name].append(v[field])
            mins[name].append(v[field.replace("median", "min")])
            if name == "featx":
                extra["isa"] = re.search(r"^isa (\S+)", text, re.M).group(1)
            elif name == "ort":
                extra["ort_load_ms"].append(v["ort_load_ms"])
            else:
                extra["xnnpack_setup_ms"].append(v["xnnpack_setup_ms"])
    return medians, mins, extra


def featx_load_ms(featx_bin, key, n=7):
    return statistics.median(
        values(run([featx_bin, "bench", "-m", OUT / f"{key}.featx", "--runs", 1, "--warmup", 0]))["model_load_ms"]
        for _ in range(n))


def peak_rss_kb(featx_bin, key):
    image = SHARED / "images" / "cat.bmp"
    r = subprocess.run(["/usr/bin/time", "-f", "%M", str(featx_bin), "extract", "-m", str(OUT / f"{key}.featx"),
                        str(image)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        log(f"FAILED: featx extract under /usr/bin/time\n{r.stderr}")
        sys.exit(1)
    return int(r.stderr.strip().splitlines()[-1])


def profile(featx_bin, key, flops_by_layer, batch=1, threads=1, runs=20):
    """Top-15 entries of featx bench --profile, with GFLOP/s per entry."""
    text = run([featx_bin, "bench", "-m", OUT / f"{key}.featx", "--profile", "--threads", threads,
                "--batch", batch, "--runs", runs, "--warmup", WARMUP])
    entries = []
    for m in re.finditer(r"^\s{2}(\S+(?: \(fused\))?)\s+([0-9.]+)\s+([0-9.]+)%$", text, re.M):
        name, ms, pct = m.group(1), float(m.group(2)), float(m.group(3))
        base = name.replace(" (fused)", "")
        # A fused block's time covers all its layers; a layer's, only itself.
        fl = sum(f for n, f in flops_by_layer if n == base or n.startswith(base + "/")) if name.endswith("(fused)") \
            else sum(f for n, f in flops_by_layer if n == base)
        entries.append((name, ms, pct, batch * fl))
    total = re.search(r"^\s{2}total\s+([0-9.]+)$", text, re.M)
    entries.sort(key=lambda e: -e[1])
    return entries[:15], float(total.group(1)) if total else sum(e[1] for e in entries)


def cpu_model():
    for line in run(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def report(res, args, command):
    L = []
    a = L.append
    a("# featx benchmark: featx vs ONNX Runtime vs XNNPACK")
    a("")
    a(f"Made by `{command}` on {res['date']} ({res['minutes']:.1f} min).")
    a("")
    a(f"- Machine: {res['cpu']}, {res['cores']} cores (lscpu), Linux {res['kernel']}; "
      f"load average before/after: {res['load_before']} / {res['load_after']} "
      "(a shared, noisy VM: read the spread column).")
    a(f"- featx ISA: **{res['isa']}** (featx bench `isa`), git {res['git']}.")
    a(f"- Peers: onnxruntime-node {res['ort_version']} (CPU EP, graph optimisation `all`, intra-op threads = N, "
      "inter-op 1); XNNPACK Debian `libxnnpack-dev` 0.0~git20220216 via its subgraph API "
      "(bench/xnnpack_runner.cpp, pthreadpool of N threads).")
    a("- Same weights everywhere: XNNPACK reads featx's folded weights from the .featx; ORT runs the "
      "`export_weights.py --onnx` graph of the same source (batch norm left for ORT to fold). "
      "All three take [0, 1] NHWC pixels and normalise inside the timed forward pass.")
    a(f"- Each row: same-features check first (max |diff| vs featx <= {TOLERANCE:g}, else the script stops), "
      f"then {args.rounds} interleaved rounds of {args.runs} timed runs (after {WARMUP} warm-ups) per runtime, "
      "one process per runtime per round, rotating order. Time = median of the round medians, ms per forward "
      "pass of the whole batch; spread = min–max of the round medians; fastest run = the single fastest "
      "forward pass over all rounds (a lower bound less hurt by neighbours on a shared machine).")
    a("")
    a("## Forward pass")
    a("")
    a("| model | batch | threads | featx ms | ORT ms | XNNPACK ms | featx / best peer | featx spread | ORT spread | XNNPACK spread | fastest run featx / ORT / XNN | max diff ORT / XNN vs featx | busy |")
    a("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- | --- | ---: |")
    for row in res["rows"]:
        med = {k: statistics.median(v) for k, v in row["medians"].items()}
        best_peer = min(med["ort"], med["xnnpack"])
        sp = {k: f"{min(v):.2f}–{max(v):.2f}" for k, v in row["medians"].items()}
        fastest = " / ".join(f"{min(row['mins'][k]):.2f}" for k in ("featx", "ort", "xnnpack"))
        a(f"| {row['label']} | {row['batch']} | {row['threads']} | {med['featx']:.2f} | {med['ort']:.2f} | "
          f"{med['xnnpack']:.2f} | **{med['featx'] / best_peer:.2f}** | {sp['featx']} | {sp['ort']} | {sp['xnnpack']} | "
          f"{fastest} | "
          f"{row['diffs']['ort']:.1e} / {row['diffs']['xnnpack']:.1e} | {max(row['busy']):.1f} |")
    a("")
    a("featx / best peer < 1 means featx is faster than both peers. busy = the most other runnable tasks "
      "(/proc/stat procs_running, mean over 0.5 s) seen at the start of a round: 0 means the two cores "
      f"were ours{'; rounds waited up to ' + format(args.wait_quiet, 'g') + ' s for quiet' if args.wait_quiet else ''}.")
    a("")
    a("## Batch-8 throughput against the FMA peak")
    a("")
    pk = res["fma"]
    a(f"Single-core FMA peak (bench/fma_peak.cpp, 12 independent accumulators, best of 6): "
      f"AVX-512 {pk['avx512']:.1f} GFLOP/s, AVX2 {pk['avx2']:.1f} GFLOP/s; two cores = 2x. "
      "FLOPs = 2 x multiply-adds of the convolutions (adds, ReLU6, pooling left out).")
    a("")
    a("| model | GFLOP per image | runtime | batch-8 ms (2 threads) | GFLOP/s | % of 2-core AVX-512 peak | % of 2-core AVX2 peak |")
    a("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for row in res["rows"]:
        if row["batch"] != 8:
            continue
        gf = row["gflop_per_image"]
        for rt in ("featx", "ort", "xnnpack"):
            ms = statistics.median(row["medians"][rt])
            rate = 8 * gf / (ms / 1000)
            a(f"| {row['label']} | {gf:.3f} | {rt} | {ms:.2f} | {rate:.1f} | "
              f"{100 * rate / (2 * pk['avx512']):.0f}% | {100 * rate / (2 * pk['avx2']):.0f}% |")
    a("")
    a("## Model load and memory")
    a("")
    a("featx load = `Model::load` (mmap, FlatBuffers verify, CRC-32C, batch-norm fold), median of 7 processes "
      "(`featx bench` model_load_ms; the file is in the page cache). For context, ORT session creation "
      "(incl. graph optimisation) and XNNPACK subgraph + runtime creation (weight packing; the .featx load "
      "is not included), medians over the timing rounds at batch 1, 1 thread. Peak RSS: "
      "`/usr/bin/time -f %M build/featx extract -m MODEL ../shared/images/cat.bmp`.")
    a("")
    a("| model | .featx size | featx load ms | ORT session ms | XNNPACK setup ms | featx extract peak RSS |")
    a("| --- | ---: | ---: | ---: | ---: | ---: |")
    for m in res["models"]:
        a(f"| {m['label']} | {m['file_bytes'] / 1e6:.2f} MB | {m['load_ms']:.1f} | {m['ort_load_ms']:.0f} | "
          f"{m['xnnpack_setup_ms']:.1f} | {m['rss_kb'] / 1024:.1f} MiB |")
    a("")
    a("## Per-layer profile (featx bench --profile, batch 1, 1 thread, top 15)")
    a("")
    a("Mean ms per forward pass over the profiled runs (separate from the timed runs above, so the per-layer "
      "clock does not disturb them). `(fused)` entries are a whole inverted-residual block that featx runs as "
      "one step; their FLOPs are the block's.")
    for m in res["models"]:
        a("")
        a(f"**{m['label']}** (profile total {m['profile_total']:.2f} ms)")
        a("")
        a("| layer | ms | % | MFLOP | GFLOP/s |")
        a("| --- | ---: | ---: | ---: | ---: |")
        for name, ms, pct, fl in m["profile"]:
            rate = f"{fl / (ms * 1e6):.1f}" if ms > 0 and fl else "–"
            a(f"| {name} | {ms:.3f} | {pct:.1f} | {fl / 1e6:.1f} | {rate} |")
    a("")
    a("## Reproduce")
    a("")
    a("See bench/README.md. Raw numbers of this run: bench/out/results.json (not committed).")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20)
    # Its own build directory by default, so a benchmark never races a
    # developer's concurrent build in build/; featx_cli only, no tests.
    ap.add_argument("--build-dir", default=str(OUT / "featx-build"))
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                    help="before each round, wait up to S seconds until no other task is runnable")
    ap.add_argument("--write", help="write the Markdown report here (e.g. bench/RESULTS.md)")
    ap.add_argument("--quick", action="store_true", help="1 round of 3 runs: a smoke test, not a measurement")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.runs = 1, 3
    command = "/usr/bin/python3 bench/run_bench.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    t_start = time.time()
    build_dir = Path(args.build_dir)
    bins = {"featx": build_dir / "featx", "xnnpack": OUT / "xnnpack_runner"}
    res = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M %Z").strip(), "cpu": cpu_model(),
           "cores": os.cpu_count(), "kernel": platform.release(), "load_before": loadavg(), "rows": [],
           "models": []}
    res["git"] = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                                text=True).stdout.strip() or "?"
    build_tools(build_dir)
    export_models()
    res["ort_version"] = json.loads((ROOT / "tools" / "ort" / "node_modules" / "onnxruntime-node" /
                                     "package.json").read_text())["version"]
    fma = values(run([OUT / "fma_peak"]))
    res["fma"] = {"avx512": fma.get("fma_avx512_gflops", float("nan")), "avx2": fma.get("fma_avx2_gflops", float("nan"))}

    for key, label, _ in MODELS:
        model = OUT / f"{key}.featx"
        resolution, flops = layer_table(bins["featx"], model)
        gflop = sum(f for _, f in flops) / 1e9
        mrow = {"key": key, "label": label, "file_bytes": model.stat().st_size}
        for batch, threads in CONFIGS:
            log(f"{key} batch {batch} threads {threads}: checking features ...")
            diffs = same_features(bins, key, resolution, batch, threads)
            log(f"  max |diff| vs featx: ORT {diffs['ort']:.2e}, XNNPACK {diffs['xnnpack']:.2e}; timing ...")
            medians, mins, extra = time_row(bins, key, batch, threads, args.rounds, args.runs, args.wait_quiet)
            log("  " + ", ".join(f"{k} {statistics.median(v):.2f} ms" for k, v in medians.items()))
            res["isa"] = extra["isa"]
            res["rows"].append({"key": key, "label": label, "batch": batch, "threads": threads, "diffs": diffs,
                                "medians": medians, "mins": mins, "busy": extra["busy"], "gflop_per_image": gflop})
            if (batch, threads) == (1, 1):
                mrow["ort_load_ms"] = statistics.median(extra["ort_load_ms"])
                mrow["xnnpack_setup_ms"] = statistics.median(extra["xnnpack_setup_ms"])
        log(f"{key}: load time, peak RSS, profile ...")
        mrow["load_ms"] = featx_load_ms(bins["featx"], key)
        mrow["rss_kb"] = peak_rss_kb(bins["featx"], key)
        mrow["profile"], mrow["profile_total"] = profile(bins["featx"], key, flops)
        res["models"].append(mrow)

    res["load_after"] = loadavg()
    res["minutes"] = (time.time() - t_start) / 60
    (OUT / "results.json").write_text(json.dumps(res, indent=1, default=str))
    text = report(res, args, command)
    print(text)
    if args.write:
        Path(args.write).write_text(text)
        log(f"wrote {args.write}")


if __name__ == "__main__":
    main()
