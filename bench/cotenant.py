#!/usr/bin/python3
"""Latency beside a busy neighbour: featx vs ONNX Runtime vs XNNPACK, p50 and p90.

    /usr/bin/python3 bench/cotenant.py [--duty 0.3] [--period-ms 100] [--cpu 1]
                  [--rounds 9] [--runs 60] [--model tf2_224] [--batch 1] [--threads 2]
                  [--build-dir bench/out/featx-build] [--baseline OTHER_FEATX]

Most users run on shared cloud machines, where a neighbour (another tenant,
the hypervisor, a cron job) takes a core for a while. This script makes one:
a CPU-bound process pinned to CPU --cpu, busy for --duty of every
--period-ms (a busy loop, then asleep), at the same priority as the
benchmark, so for its busy part the kernel shares that core between it and
one of our threads. The runtimes themselves are not pinned.

Each round runs featx bench, ort_bench.mjs and xnnpack_runner once each
(RUNS timed passes after 3 warm-ups, one process each, the start of the
order rotating), first with the machine quiet, then with the neighbour
running: quiet and loaded rounds interleave, so a slow phase of the host
hits both. Each process prints the median and the p90 (nearest rank) of its
passes; reported per runtime are the medians over rounds of those, and
featx's p90 against the best peer's p90, paired per round. The same-features
check of run_bench.py runs first (the three compute the same vector).
--baseline adds a second featx binary (e.g. one built from an earlier
commit) to every round: an interleaved A/B of a change, quiet and loaded.
Prints a Markdown table (bench/RESULTS.md keeps one per CPU).
"""
import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_bench as rb  # noqa: E402  (the same build, models and runners)

NEIGHBOUR = r"""
import os, sys, time
cpu, busy, idle = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
os.sched_setaffinity(0, {cpu})
while True:
    end = time.perf_counter() + busy
    while time.perf_counter() < end:
        pass
    time.sleep(idle)
"""


class Neighbour:
    """The busy process, started and stopped around the loaded rounds."""

    def __init__(self, cpu, duty, period_s):
        self.args = [str(cpu), str(duty * period_s), str((1 - duty) * period_s)]
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen([rb.PY, "-c", NEIGHBOUR, *self.args])
        time.sleep(0.2)  # in its first busy phase before our processes start
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def one_round(cmds, order):
    got = {}
    for name in order:
        v = rb.values(rb.run(cmds[name][0]))
        got[name] = (v[cmds[name][1] + "_median"], v[cmds[name][1] + "_p90"])
    return got


def table(results, peers):
    lines = ["| runtime | quiet p50 ms | quiet p90 ms | loaded p50 ms | loaded p90 ms | loaded p90 / quiet p50 |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name in results["quiet"]:
        q50 = statistics.median(r[0] for r in results["quiet"][name])
        q90 = statistics.median(r[1] for r in results["quiet"][name])
        l50 = statistics.median(r[0] for r in results["loaded"][name])
        l90 = statistics.median(r[1] for r in results["loaded"][name])
        lines.append(f"| {name} | {q50:.2f} | {q90:.2f} | {l50:.2f} | {l90:.2f} | {l90 / q50:.2f} |")
    lines.append("")
    for state in ("quiet", "loaded"):
        if "baseline" in results[state]:
            for i, pct in ((0, "p50"), (1, "p90")):
                ratios = [a[i] / b[i] for a, b in zip(results[state]["featx"], results[state]["baseline"])]
                lines.append(f"- {state}: featx {pct} / baseline featx {pct}, paired per round: "
                             f"**{statistics.median(ratios):.2f}** (rounds {min(ratios):.2f}-{max(ratios):.2f})")
        for i, pct in ((0, "p50"), (1, "p90")):
            ratios = []
            for r in range(len(results[state]["featx"])):
                best = min(results[state][p][r][i] for p in peers)
                ratios.append(results[state]["featx"][r][i] / best)
            lines.append(f"- {state}: featx {pct} / best peer's {pct}, paired per round: "
                         f"**{statistics.median(ratios):.2f}** (rounds {min(ratios):.2f}-{max(ratios):.2f})")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duty", type=float, default=0.3, help="share of each period the neighbour is busy")
    ap.add_argument("--period-ms", type=float, default=100)
    ap.add_argument("--cpu", type=int, default=1, help="the CPU the neighbour is pinned to")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--model", default="tf2_224", choices=[k for k, _, _ in rb.MODELS])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--build-dir", default=str(rb.OUT / "featx-build"))
    ap.add_argument("--baseline", help="another featx binary timed beside this one (an A/B)")
    ap.add_argument("--write", help="write the table as this CPU's co-tenant section of this file "
                                    "(e.g. bench/RESULTS.md; other sections are kept)")
    args = ap.parse_args()
    if not 0 < args.duty < 1:
        sys.exit("cotenant.py: --duty must be between 0 and 1")
    build_dir = Path(args.build_dir)
    bins = {"featx": build_dir / "featx", "xnnpack": rb.OUT / "xnnpack_runner"}
    rb.build_tools(build_dir)
    if not all((rb.OUT / f"{k}{ext}").exists() for k, _, _ in rb.MODELS for ext in (".featx", ".onnx")):
        rb.export_models()
    key, b, t = args.model, args.batch, args.threads
    resolution, _ = rb.layer_table(bins["featx"], rb.OUT / f"{key}.featx")
    diffs = rb.same_features(bins, key, resolution, b, t)
    common = ["--threads", t, "--batch", b, "--runs", args.runs, "--warmup", rb.WARMUP]
    cmds = {
        "featx": ([bins["featx"], "bench", "-m", rb.OUT / f"{key}.featx", *common], "featx_ms"),
        "ort": (["node", rb.BENCH / "ort_bench.mjs", "-m", rb.OUT / f"{key}.onnx", *common], "ort_ms"),
        "xnnpack": ([bins["xnnpack"], "-m", rb.OUT / f"{key}.featx", *common], "xnnpack_ms"),
    }
    if args.baseline:
        cmds["baseline"] = ([Path(args.baseline).resolve(), *cmds["featx"][0][1:]], "featx_ms")
    names = list(cmds)
    results = {"quiet": {n: [] for n in names}, "loaded": {n: [] for n in names}}
    git = subprocess.run(["git", "-C", rb.ROOT, "describe", "--always", "--dirty"], capture_output=True,
                         text=True).stdout.strip()
    t0 = time.time()
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name, (p50, p90) in one_round(cmds, order).items():
            results["quiet"][name].append((p50, p90))
        with Neighbour(args.cpu, args.duty, args.period_ms / 1000):
            for name, (p50, p90) in one_round(cmds, order).items():
                results["loaded"][name].append((p50, p90))
        rb.log(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{n} {results['loaded'][n][-1][1]:.2f}" for n in names) + " ms loaded p90")
    command = "/usr/bin/python3 bench/cotenant.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    cpu, uarch = rb.cpu_model(), rb.microarchitecture(bins["featx"], rb.OUT / f"{key}.featx")
    report = (f"## Beside a busy neighbour: {cpu}, {uarch}, {os.cpu_count()} cores\n\n"
              f"Made by `{command}` on {time.strftime('%Y-%m-%d %H:%M')} ({(time.time() - t0) / 60:.1f} min), "
              f"git {git}, CPU {rb.cpu_model()}, {os.cpu_count()} cores. {rb.MODELS[[k for k, _, _ in rb.MODELS].index(key)][1]}, "
              f"batch {b}, {t} threads; neighbour busy {100 * args.duty:.0f}% of every {args.period_ms:g} ms on CPU "
              f"{args.cpu}; {args.rounds} rounds of {args.runs} passes per runtime and state; max |diff| vs featx: "
              f"ORT {diffs['ort']:.1e}, XNNPACK {diffs['xnnpack']:.1e}."
              + (f" Baseline featx: {args.baseline}." if args.baseline else "") + "\n\n"
              + table(results, ["ort", "xnnpack"]) + "\n")
    print(report)
    if args.write:
        rb.write_section(args.write, f"co-tenant: {cpu} / {uarch}", report)
        rb.log(f"wrote this CPU's co-tenant section of {args.write}")


if __name__ == "__main__":
    main()
