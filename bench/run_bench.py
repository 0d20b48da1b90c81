#!/usr/bin/python3
"""Side-by-side benchmark: featx vs ONNX Runtime vs XNNPACK on the same weights.

    /usr/bin/python3 bench/run_bench.py [--rounds 7] [--runs 20] [--budget 420]
                  [--build-dir bench/out/featx-build] [--write bench/RESULTS.md] [--quick]

Steps (all outputs under bench/out/, which is disposable):
  1. build: featx (Release, cmake --build BUILD_DIR --target featx_cli), the XNNPACK
     runner and the FMA peak probe (g++, see build_tools()).
  2. export each model once with tools/export_weights.py (.featx + .onnx).
  3. per configuration row (model x batch x threads): the same-features check
     first -- featx extract on an .npy of featx bench's LCG pixels, ORT and
     XNNPACK on their built-in copy of the same LCG pixels -- max |diff| vs
     featx must be <= 1e-4 or the script stops (exit 1). Because the peers
     generate their pixels themselves, a passing check also proves they time
     the very input that was checked (featx bench makes the same pixels).
  4. timing, interleaved: ROUNDS rounds, each running featx bench, ort_bench
     and xnnpack_runner once (RUNS timed forward passes after 3 warm-ups,
     one process each); the start of the order rotates every round so no
     runtime always follows the same neighbour. Reported: the median of the
     rounds' medians, and the spread of the round medians. This machine is
     shared: each round first waits for a quiet CPU, and a round in which
     other work took CPU from ours, or an FMA canary shows the host slowed
     (class Contention), is rerun, both
     only within --budget seconds so the whole run stays near 10 minutes.
  5. model load (featx bench's model_load_ms from every timing round), peak RSS
     of `featx extract` on one image (GNU time %M), per-layer profile
     (featx bench --profile, top 15), FMA peak of one and two cores (fma_peak).
Then prints the Markdown report, and writes it with --write.
"""
import argparse
import datetime
import json
import os
import platform
import re
import resource
import shlex
import shutil
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
    run(["g++", "-O2", "-std=c++17", "-pthread", BENCH / "fma_peak.cpp", "-o", OUT / "fma_peak"])
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


def layer_shapes(featx_bin, model, size=None):
    """Conv layers from `featx inspect` at the model's resolution or at size =
    (h, w) -> (resolution, [dict(name, kind, kh, kw, stride, in_h, in_w, in_c,
    out_h, out_w, out_c, flops per image)]); inspect lists each layer's slim
    name, then its Keras name when it has one."""
    text = run([featx_bin, "inspect", model])
    res = int(re.search(r"resolution (\d+)", text).group(1))
    h, w = size or (res, res)
    rows = []
    for m in re.finditer(r"^\s+(\S+)\s+(?:\S+\s+)?(conv|depthwise)\s+(\d+)x(\d+) s(\d+)\s+(\d+) -> (\d+)", text, re.M):
        name, kind = m.group(1), m.group(2)
        kh, kw, s, ci, co = (int(m.group(i)) for i in range(3, 8))
        oh, ow = -(-h // s), -(-w // s)  # TF SAME: ceil(in / stride)
        macs = oh * ow * kh * kw * (ci if kind == "depthwise" else ci * co)
        rows.append(dict(name=name, kind=kind, kh=kh, kw=kw, stride=s, in_h=h, in_w=w, in_c=ci,
                         out_h=oh, out_w=ow, out_c=co, flops=2 * macs))
        h, w = oh, ow
    if len(rows) < 52:  # MobileNetV2 has 52 convolutions; fewer means inspect's layout changed
        sys.exit(f"run_bench: parsed {len(rows)} conv layers from `featx inspect {model}`, expected 52")
    return res, rows


def layer_table(featx_bin, model, size=None):
    """[(name, flops per image)] of layer_shapes."""
    res, rows = layer_shapes(featx_bin, model, size)
    return res, [(r["name"], r["flops"]) for r in rows]


def same_features(bins, key, res, batch, threads, size=None, onnx=None):
    """All three runtimes on the same pixels; returns max |diff| of ORT and XNNPACK vs featx.
    size = (h, w) and onnx (a graph for that size) for inputs other than res x res."""
    h, w = size or (res, res)
    lcg_pixels(max(b for b, _ in CONFIGS) * res * res * 3)
    x = lcg_pixels(batch * h * w * 3).reshape(batch, h, w, 3)
    inp = OUT / f"check_{key}_b{batch}_{h}x{w}.npy"
    np.save(inp, x)
    tag = f"{key}_b{batch}_t{threads}_{h}x{w}"
    f_out, o_out, x_out = OUT / f"featx_{tag}.npy", OUT / f"ort_{tag}.npy", OUT / f"xnn_{tag}.npy"
    sized = ["--size", f"{h}x{w}"]
    run([bins["featx"], "extract", "-m", OUT / f"{key}.featx", "--threads", threads, "--batch", batch,
         "-o", f_out, inp])
    run(["node", BENCH / "ort_bench.mjs", "-m", onnx or OUT / f"{key}.onnx", "--threads", threads,
         "--batch", batch, *sized, "--runs", 1, "--warmup", 0, "--dump", o_out])
    run([bins["xnnpack"], "-m", OUT / f"{key}.featx", "--threads", threads, "--batch", batch, *sized,
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


class Contention:
    """How much CPU other work took while ours ran: the machine's busy time
    (/proc/stat: user+nice+system+irq+softirq+steal, so a hypervisor's steal
    counts too) minus what this script and its children used
    (getrusage), as a share of wall time x CPUs. Our own threads, spinning
    or not, never count against us. On two cores a neighbour taking one core
    can double a 2-thread runtime's time (its workers spin-wait for the
    descheduled one), so rounds above LIMIT are thrown away and rerun while
    the budget lasts. Resolution is the kernel tick (10 ms per CPU), hence
    the decision is made over a whole round (three processes, a second or
    more), not per process."""

    LIMIT = 0.05
    HZ = os.sysconf("SC_CLK_TCK")

    def __init__(self, budget_s):
        self.deadline = time.time() + budget_s
        self.best = {}  # best canary so far per ISA ("avx512", "avx2"), GFLOP/s

    @classmethod
    def _sample(cls):
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        machine = sum(f[i] for i in (0, 1, 2, 5, 6, 7) if i < len(f)) / cls.HZ
        ours = sum(getattr(resource.getrusage(who), a) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                   for a in ("ru_utime", "ru_stime"))
        return machine, ours, time.monotonic()

    def start(self):
        return self._sample()

    @staticmethod
    def share(a, b):
        """Share of the machine (0..1) other tasks used between samples a and b."""
        wall = b[2] - a[2]
        return max(0.0, ((b[0] - a[0]) - (b[1] - a[1])) / (wall * (os.cpu_count() or 1)))

    def wait_quiet(self, window_s=1.0, limit_s=20):
        """Waits (up to limit_s, within the budget) for a window with other work below LIMIT/2."""
        end = min(time.time() + limit_s, self.deadline)
        while True:
            a = self.start()
            time.sleep(window_s)
            level = self.share(a, self.start())
            if level < self.LIMIT / 2 or time.time() >= end:
                return level

    def can_retry(self):
        return time.time() < self.deadline

    # A slowed host is invisible in /proc/stat (a busy hyperthread sibling on
    # the host, a lower clock), so a 2-core FMA canary runs before and after
    # every round: a round whose canary falls below SLOW x the best canary
    # seen is rerun like a disturbed one. The canary runs both ISAs, but only
    # AVX2 decides: this host has long phases (minutes) in which AVX-512 FMA
    # throughput halves while AVX2's does not; they slow the three runtimes
    # of a round alike (all run AVX-512), and discarding them would spend the
    # whole rerun budget on the first row. The AVX-512 canaries feed the peak.
    SLOW = 0.8

    def canary(self):
        """All-core FMA GFLOP/s per ISA over ~60 ms each ({} when fma_peak cannot run)."""
        v = values(run([OUT / "fma_peak", "--threads", os.cpu_count() or 1, "--ms", 60, "--isa", "both"]))
        got = {isa: v[f"fma_{isa}_gflops"] for isa in ("avx512", "avx2") if f"fma_{isa}_gflops" in v}
        for isa, g in got.items():
            self.best[isa] = max(self.best.get(isa, 0.0), g)
        return got

    def host_speed(self, *canaries):
        """Slowest AVX2 canary / best AVX2 canary so far (1.0 without a canary)."""
        ratios = [c["avx2"] / self.best["avx2"] for c in canaries if "avx2" in c and self.best.get("avx2")]
        return min(ratios) if ratios else 1.0


def time_row(bins, key, batch, threads, rounds, runs, contention):
    common = ["--threads", threads, "--batch", batch, "--runs", runs, "--warmup", WARMUP]
    cmds = {
        "featx": ([bins["featx"], "bench", "-m", OUT / f"{key}.featx", *common], "featx_ms_median"),
        "ort": (["node", BENCH / "ort_bench.mjs", "-m", OUT / f"{key}.onnx", *common], "ort_ms_median"),
        "xnnpack": ([bins["xnnpack"], "-m", OUT / f"{key}.featx", *common], "xnnpack_ms_median"),
    }
    order = list(cmds)
    medians = {k: [] for k in cmds}
    mins = {k: [] for k in cmds}
    extra = {"isa": None, "featx_load_ms": [], "ort_load_ms": [], "xnnpack_setup_ms": [], "others": [], "speed": [],
             "round_peak512": [], "discarded": 0}
    r = 0
    while r < rounds:
        contention.wait_quiet()
        got = {}
        before = contention.canary()
        t0 = contention.start()
        # One-thread rows: the three processes of a round share one CPU,
        # alternating between rounds. This host's vCPUs have slow phases of
        # their own (up to 1.7x, seconds to minutes; a busy hyperthread
        # sibling outside the VM, invisible from inside), so without pinning
        # a round could compare featx on the slow vCPU with a peer on the
        # fast one.
        pin = ["taskset", "-c", str(r % (os.cpu_count() or 1))] if threads == 1 and shutil.which("taskset") else []
        for name in order[r % 3:] + order[:r % 3]:
            got[name] = run(pin + cmds[name][0])
        others = contention.share(t0, contention.start())
        after = contention.canary()
        speed = contention.host_speed(before, after)
        if (others > Contention.LIMIT or speed < Contention.SLOW) and contention.can_retry():
            extra["discarded"] += 1
            log(f"  round {r + 1}: other work took {100 * others:.0f}% of the CPUs, host at {100 * speed:.0f}% "
                "of its best speed: discarded, rerunning")
            continue
        extra["others"].append(others)
        extra["speed"].append(speed)
        # The round's own AVX-512 peak: the faster of its two canaries.
        extra["round_peak512"].append(max([c["avx512"] for c in (before, after) if "avx512" in c] or [float("nan")]))
        for name, text in got.items():
            field = cmds[name][1]
            v = values(text)
            medians[name].append(v[field])
            mins[name].append(v[field.replace("median", "min")])
            if name == "featx":
                extra["isa"] = re.search(r"^isa (\S+)", text, re.M).group(1)
                extra["featx_load_ms"].append(v["model_load_ms"])
            elif name == "ort":
                extra["ort_load_ms"].append(v["ort_load_ms"])
            else:
                extra["xnnpack_setup_ms"].append(v["xnnpack_setup_ms"])
        r += 1
    return medians, mins, extra


def peak_rss_kb(featx_bin, key):
    image = SHARED / "images" / "cat.bmp"
    r = subprocess.run(["/usr/bin/time", "-f", "%M", str(featx_bin), "extract", "-m", str(OUT / f"{key}.featx"),
                        str(image)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        log(f"FAILED: featx extract under /usr/bin/time\n{r.stderr}")
        sys.exit(1)
    return int(r.stderr.strip().splitlines()[-1])


def profile(featx_bin, key, flops_by_layer, batch=1, threads=1, runs=20, tries=3, fuse=True, top=15):
    """Top entries of featx bench --profile (layer by layer with fuse=False),
    with the FLOPs of each; of `tries` processes the one with the smallest
    total, to step over the host's slow phases."""
    texts = [run([featx_bin, "bench", "-m", OUT / f"{key}.featx", "--profile", *([] if fuse else ["--no-fuse"]),
                  "--threads", threads,
                  "--batch", batch, "--runs", runs, "--warmup", WARMUP]) for _ in range(tries)]
    def total_of(t):
        m = re.search(r"^\s{2}total\s+([0-9.]+)$", t, re.M)
        return float(m.group(1)) if m else float("inf")
    text = min(texts, key=total_of)
    entries = []
    for m in re.finditer(r"^\s{2}(\S+(?: \(fused\))?)\s+([0-9.]+)\s+([0-9.]+)%$", text, re.M):
        name, ms, pct = m.group(1), float(m.group(2)), float(m.group(3))
        # A fused block's time covers all its layers ("Conv+expanded_conv": the
        # stem run as block 0's expansion, too); a layer's, only itself.
        parts = name.replace(" (fused)", "").split("+")
        fl = sum(f for n, f in flops_by_layer if any(n == p or n.startswith(p + "/") for p in parts)) \
            if name.endswith("(fused)") else sum(f for n, f in flops_by_layer if n == parts[0])
        entries.append((name, ms, pct, batch * fl))
    total = re.search(r"^\s{2}total\s+([0-9.]+)$", text, re.M)
    entries.sort(key=lambda e: -e[1])
    return entries[:top], float(total.group(1)) if total else sum(e[1] for e in entries)


def fma_peaks(res, contention):
    """Peak FMA GFLOP/s of one and two cores: the best of every measurement
    made so far (called at the start and the end), since a peak measured
    while the host is slowed would flatter every percentage."""
    one = values(run([OUT / "fma_peak"]))
    two = values(run([OUT / "fma_peak", "--threads", 2]))
    nan = float("nan")
    got = {"avx512": one.get("fma_avx512_gflops", nan), "avx2": one.get("fma_avx2_gflops", nan),
           "avx512_2": two.get("fma_avx512_gflops", nan), "avx2_2": two.get("fma_avx2_gflops", nan)}
    old = res.get("fma", {})
    res["fma"] = {k: max(v, old.get(k, v)) for k, v in got.items()}
    for isa, g in contention.best.items():  # the canaries are 2-thread measurements too
        res["fma"][f"{isa}_2"] = max(res["fma"][f"{isa}_2"], g)


def core_peak(fma, isa, cores):
    """FMA GFLOP/s of `cores` (1 or 2) cores from fma_peaks' readings. The
    two vCPUs are separate cores (a quiet 2-thread run measures twice one
    core), so two cores' peak is the larger of the 2-thread measurement and
    twice the one-core one, and one core's the larger of the one-core
    measurement and half the 2-thread one: a measurement taken in a slow
    phase of the host can only understate it."""
    if cores >= 2:
        return max(fma[f"{isa}_2"], 2 * fma[isa])
    return max(fma[isa], fma[f"{isa}_2"] / 2)


def cpu_model():
    for line in run(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def microarchitecture(featx_bin, model):
    """'Zen 5 (AuthenticAMD family 26 model 2)' and the like: featx's own
    reading (cpu_info.hpp, printed by `featx inspect`), so the name table
    lives once."""
    m = re.search(r"^microarchitecture: (.+)$", run([featx_bin, "inspect", model]), re.M)
    return m.group(1).strip() if m else platform.machine()


def write_section(path, key, text):
    """Replaces this CPU's section of a results file (or appends it): every
    machine measured keeps its own tables."""
    begin, end = f"<!-- run_bench section: {key} -->", f"<!-- end of run_bench section: {key} -->"
    block = f"{begin}\n{text.rstrip()}\n{end}\n"
    old = Path(path).read_text() if Path(path).exists() else ""
    if begin in old and end in old:
        new = old[:old.index(begin)] + block + old[old.index(end) + len(end) + 1:]
    else:
        new = old.rstrip() + ("\n\n" if old.strip() else "") + block
    Path(path).write_text(new)


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def report(res, args, command):
    L = []
    a = L.append
    a(f"## Forward pass: {res['cpu']}, {res['uarch']}, {res['cores']} cores")
    a("")
    a(f"Made by `{command}` on {res['date']} ({res['minutes']:.1f} min).")
    a("")
    a(f"- Machine: {res['cpu']} ({res['uarch']}), {res['cores']} cores (lscpu), Linux {res['kernel']}; "
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
      "one process per runtime per round, rotating order (1-thread rows: the round's three processes pinned to "
      "the same CPU, alternating CPUs between rounds). Time = median of the round medians, ms per forward "
      "pass of the whole batch; spread = min–max of the round medians; fastest run = the single fastest "
      "forward pass over all rounds (a lower bound less hurt by neighbours on a shared machine).")
    a("")
    a("### Forward pass")
    a("")
    a("| model | batch | threads | featx ms | ORT ms | XNNPACK ms | featx / ORT | featx / XNNPACK | "
      "featx / best peer | spread featx; ORT; XNN | fastest run featx / ORT / XNN | max diff ORT / XNN vs featx "
      "| other load / host speed / rounds rerun |")
    a("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | ---: |")
    for row in res["rows"]:
        m = row["medians"]
        med = {k: statistics.median(v) for k, v in m.items()}
        # Paired ratios: within a round the three ran back to back, so a
        # slow phase of the host hits all of them; the median of per-round
        # ratios is steadier than the ratio of medians.
        vs_ort = statistics.median(f / o for f, o in zip(m["featx"], m["ort"]))
        vs_xnn = statistics.median(f / x for f, x in zip(m["featx"], m["xnnpack"]))
        vs_best = statistics.median(f / min(o, x) for f, o, x in zip(m["featx"], m["ort"], m["xnnpack"]))
        sp = "; ".join(f"{min(m[k]):.2f}–{max(m[k]):.2f}" for k in ("featx", "ort", "xnnpack"))
        others = f"{100 * max(row['others']):.1f}% / {100 * min(row['speed']):.0f}%"
        fastest = " / ".join(f"{min(row['mins'][k]):.2f}" for k in ("featx", "ort", "xnnpack"))
        a(f"| {row['label']} | {row['batch']} | {row['threads']} | {med['featx']:.2f} | {med['ort']:.2f} | "
          f"{med['xnnpack']:.2f} | {vs_ort:.2f} | {vs_xnn:.2f} | **{vs_best:.2f}** | {sp} | {fastest} | "
          f"{row['diffs']['ort']:.1e} / {row['diffs']['xnnpack']:.1e} | {others} / {row['discarded']} |")
    a("")
    a("Ratios are paired: the median over rounds of featx's round median divided by the peer's (best peer: "
      "the faster of the two in that round); < 1 means featx is faster. Other load = the largest share of the "
      "two CPUs that other tasks (incl. hypervisor steal) used during a kept round (/proc/stat busy time minus "
      "our processes' rusage); host speed = the slowest 2-core FMA canary run before or after a kept round, "
      "relative to the best canary of the whole run (AVX2; AVX-512 has long half-speed phases that hit all three runtimes of a round alike). A round with other load above "
      f"{100 * Contention.LIMIT:.0f}% or host speed below {100 * Contention.SLOW:.0f}% was discarded and rerun "
      f"while the {args.budget:g} s budget lasted.")
    a("")
    a("### Throughput against the FMA peak")
    a("")
    pk = res["fma"]
    peak512 = {c: core_peak(pk, "avx512", c) for c in (1, 2)}
    peak2 = {c: core_peak(pk, "avx2", c) for c in (1, 2)}
    a(f"FMA peak (bench/fma_peak.cpp, 12 independent accumulators, best of 6 repetitions, measured at the start "
      f"and the end of the run, and the 2-thread canaries before and after every round of both ISAs; the best "
      f"of all kept): one core AVX-512 {pk['avx512']:.1f} GFLOP/s, AVX2 {pk['avx2']:.1f}; "
      f"two threads at once AVX-512 {pk['avx512_2']:.1f}, AVX2 {pk['avx2_2']:.1f}. Peaks used below: two cores = "
      f"max(two-thread, 2 x one-core): AVX-512 **{peak512[2]:.1f}**, AVX2 **{peak2[2]:.1f}** GFLOP/s; one core = "
      f"max(one-core, half the two-thread): AVX-512 **{peak512[1]:.1f}**, AVX2 **{peak2[1]:.1f}**; each row is set "
      "against the peak of the cores it runs on. "
      "FLOPs = 2 x multiply-adds of the convolutions (adds, ReLU6, pooling left out). Rates from the median "
      "time and from the fastest single pass (the host's slow phases lower the median). Paired = the median "
      "over rounds of the round's rate divided by that round's own AVX-512 peak (the faster of the 2-thread "
      "canaries run just before and just after it; half of it for a 1-thread row), so a round in one of the "
      "host's slow phases is set against the peak of that phase.")
    a("")
    a("| model | GFLOP per image | batch | threads | runtime | ms | GFLOP/s | % of AVX-512 peak | % of AVX2 peak "
      "| paired: % of the round's AVX-512 peak (round peaks) | fastest pass ms | GFLOP/s | % of AVX-512 peak |")
    a("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in res["rows"]:
        gf, batch, threads = row["gflop_per_image"], row["batch"], row["threads"]
        cores = min(threads, 2)
        for rt in ("featx", "ort", "xnnpack"):
            ms = statistics.median(row["medians"][rt])
            fast = min(row["mins"][rt])
            rate, frate = batch * gf / (ms / 1000), batch * gf / (fast / 1000)
            round_peaks = [p * cores / 2 for p in row.get("round_peak512", [])]
            paired = [batch * gf / (m / 1000) / p for m, p in zip(row["medians"][rt], round_peaks) if p == p]
            paired_cell = (f"{100 * statistics.median(paired):.0f}% ({min(round_peaks):.0f}-{max(round_peaks):.0f})"
                           if paired else "n/a")
            name = f"**{rt}**" if rt == "featx" else rt
            a(f"| {row['label']} | {gf:.3f} | {batch} | {threads} | {name} | {ms:.2f} | {rate:.1f} | "
              f"{100 * rate / peak512[cores]:.0f}% | {100 * rate / peak2[cores]:.0f}% | {paired_cell} | {fast:.2f} | "
              f"{frate:.1f} | {100 * frate / peak512[cores]:.0f}% |")
    a("")
    a("### Model load and memory")
    a("")
    a("featx load = `Model::load` (mmap, FlatBuffers verify, CRC-32C, batch-norm fold) in a fresh process: "
      "median and fastest over the featx processes of every kept timing round of the model (`featx bench` "
      "model_load_ms, spread over the whole run; the file is in the page cache). For context, ORT session creation "
      "(incl. graph optimisation) and XNNPACK subgraph + runtime creation (weight packing; the .featx load "
      "is not included), medians over the timing rounds at batch 1, 1 thread. Peak RSS: "
      "`/usr/bin/time -f %M featx extract -m MODEL ../shared/images/cat.bmp` (the featx this script built; "
      "features printed as JSON to a pipe).")
    a("")
    a("| model | .featx size | featx load ms (fastest) | ORT session ms | XNNPACK setup ms | featx extract peak RSS |")
    a("| --- | ---: | ---: | ---: | ---: | ---: |")
    for m in res["models"]:
        a(f"| {m['label']} | {m['file_bytes'] / 1e6:.2f} MB | {m['load_ms']:.1f} ({m['load_fastest_ms']:.1f}) | {m['ort_load_ms']:.0f} | "
          f"{m['xnnpack_setup_ms']:.1f} | {m['rss_kb'] / 1024:.1f} MiB |")
    a("")
    a("### Per-layer profile (featx bench --profile, batch 1, 1 thread, top 15; best of 3 processes)")
    a("")
    a("Mean ms per forward pass over the profiled runs (separate from the timed runs above, so the per-layer "
      "clock does not disturb them). `(fused)` entries are a whole inverted-residual block that featx runs as "
      "one step; their FLOPs are the block's (`Conv+expanded_conv`: block 0 with the stem as its expansion).")
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
    a("### Reproduce")
    a("")
    a("See bench/README.md. Raw numbers of this run: bench/out/results.json (not committed).")
    return "\n".join(L) + "\n"


def publish(res, args, command):
    """Prints the report of run `res` and, with --write, puts it in that CPU's section."""
    text = report(res, args, command)
    print(text)
    if args.write:
        write_section(args.write, f"{res['cpu']} / {res['uarch']}", text)
        log(f"wrote the section of {res['cpu']} / {res['uarch']} in {args.write}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--runs", type=int, default=20)
    # Its own build directory by default, so a benchmark never races a
    # developer's concurrent build in build/; featx_cli only, no tests.
    ap.add_argument("--build-dir", default=str(OUT / "featx-build"))
    ap.add_argument("--budget", type=float, default=420, metavar="S",
                    help="seconds (from the start) during which rounds disturbed by other work are rerun "
                         "and rounds wait for a quiet CPU; afterwards every round counts (default 420)")
    ap.add_argument("--write", help="write the Markdown report as this CPU's section of this file "
                                    "(e.g. bench/RESULTS.md; other CPUs' sections are kept)")
    ap.add_argument("--quick", action="store_true", help="1 round of 3 runs: a smoke test, not a measurement")
    ap.add_argument("--report", metavar="RESULTS_JSON",
                    help="measure nothing: print (and --write) the report of a saved run, e.g. "
                         "bench/out/results.json, in this script's current layout")
    args = ap.parse_args()
    if args.report:
        res = json.loads(Path(args.report).read_text())
        for key in ("rounds", "runs", "budget"):  # runs saved before these were recorded used the defaults
            setattr(args, key, res.get(key, ap.get_default(key)))
        publish(res, args, res.get("command", "/usr/bin/python3 bench/run_bench.py --write bench/RESULTS.md"))
        return
    if args.quick:
        args.rounds, args.runs = 1, 3
    command = "/usr/bin/python3 bench/run_bench.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    t_start = time.time()
    build_dir = Path(args.build_dir)
    bins = {"featx": build_dir / "featx", "xnnpack": OUT / "xnnpack_runner"}
    res = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M %Z").strip(), "cpu": cpu_model(),
           "cores": os.cpu_count(), "kernel": platform.release(), "load_before": loadavg(), "rows": [],
           "models": [], "rounds": args.rounds, "runs": args.runs, "budget": args.budget, "command": command}
    res["git"] = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                                text=True).stdout.strip() or "?"
    contention = Contention(args.budget)
    build_tools(build_dir)
    export_models()
    res["uarch"] = microarchitecture(bins["featx"], OUT / f"{MODELS[0][0]}.featx")
    res["ort_version"] = json.loads((ROOT / "tools" / "ort" / "node_modules" / "onnxruntime-node" /
                                     "package.json").read_text())["version"]
    contention.wait_quiet()
    for _ in range(3):  # calibrates the canary's best
        contention.canary()
    fma_peaks(res, contention)

    for key, label, _ in MODELS:
        model = OUT / f"{key}.featx"
        resolution, flops = layer_table(bins["featx"], model)
        gflop = sum(f for _, f in flops) / 1e9
        mrow = {"key": key, "label": label, "file_bytes": model.stat().st_size, "load_samples": []}
        for batch, threads in CONFIGS:
            log(f"{key} batch {batch} threads {threads}: checking features ...")
            diffs = same_features(bins, key, resolution, batch, threads)
            log(f"  max |diff| vs featx: ORT {diffs['ort']:.2e}, XNNPACK {diffs['xnnpack']:.2e}; timing ...")
            medians, mins, extra = time_row(bins, key, batch, threads, args.rounds, args.runs, contention)
            log("  " + ", ".join(f"{k} {statistics.median(v):.2f} ms" for k, v in medians.items()))
            res["isa"] = extra["isa"]
            res["rows"].append({"key": key, "label": label, "batch": batch, "threads": threads, "diffs": diffs,
                                "medians": medians, "mins": mins, "others": extra["others"], "speed": extra["speed"],
                                "discarded": extra["discarded"], "gflop_per_image": gflop,
                                "round_peak512": extra["round_peak512"]})
            mrow["load_samples"] += extra["featx_load_ms"]
            if (batch, threads) == (1, 1):
                mrow["ort_load_ms"] = statistics.median(extra["ort_load_ms"])
                mrow["xnnpack_setup_ms"] = statistics.median(extra["xnnpack_setup_ms"])
        log(f"{key}: load time, peak RSS, profile ...")
        contention.wait_quiet()
        # Load times of every kept round's featx process: spread over the
        # whole row sequence, so one slow minute of the host cannot decide it.
        mrow["load_ms"] = statistics.median(mrow["load_samples"])
        mrow["load_fastest_ms"] = min(mrow["load_samples"])
        mrow["rss_kb"] = peak_rss_kb(bins["featx"], key)
        contention.wait_quiet()
        mrow["profile"], mrow["profile_total"] = profile(bins["featx"], key, flops)
        res["models"].append(mrow)

    contention.wait_quiet()
    fma_peaks(res, contention)
    res["load_after"] = loadavg()
    res["minutes"] = (time.time() - t_start) / 60
    (OUT / "results.json").write_text(json.dumps(res, indent=1, default=str))
    publish(res, args, command)


if __name__ == "__main__":
    main()
