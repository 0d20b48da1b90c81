#!/usr/bin/python3
"""Cost curves: how featx, ONNX Runtime and XNNPACK grow with input size,
batch and width, on the same run, as tables and PNG charts.

    /usr/bin/python3 bench/cost_curves.py [--threads 2] [--rounds 3]
                  [--write bench/RESULTS.md] [--plots bench/curves] [--quick]

Three curves, each varying one dimension from MobileNetV2 1.0 at 224, batch 1:
  - size: 96, 160, 224, 320, 512, 1024 square and 257x181 (odd, not square),
    at batch 1 and batch 8 (dense spatial maps at 512-1024 are a real use);
  - batch: 1, 8, 32 at 224;
  - width: 0.35, 1.0, 1.4 at 224, batch 1 and 8.
Width 1.0 is the TF2 .tflite of ../shared; 0.35 and 1.4 are random-weight
models (only the shapes matter for cost). Per point: the same-features check
of run_bench.py first (ORT's graph is exported for that size), then ROUNDS
interleaved rounds of featx bench, ort_bench.mjs and xnnpack_runner (one
process each, the order rotating), each timing RUNS passes after 2 warm-ups;
RUNS shrinks with the work (about 1 s of featx passes, 3 to 30). Reported:
the median of the round medians (ms per pass of the batch), GFLOP/s
(2 x multiply-adds of the convolutions), % of the 2-core FMA peak
(bench/fma_peak, best of the start and the end of the run), featx's
workspace (Plan::workspace_bytes) and each process's peak RSS
(/usr/bin/time %M, the input batch included; node's own ~50 MB in ORT's).
All three compute the pooled 1280-vector; `--pool none` writes the map
instead, the same convolutions.
"""
import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_bench as rb  # noqa: E402  (the same build, runners, parsers and section writer)

WIDTHS = {  # key -> (alpha, exporter arguments)
    "a100": (1.0, rb.MODELS[0][2]),
    "a035": (0.35, ["--random", "--alpha", "0.35", "--resolution", "224", "--seed", "1"]),
    "a140": (1.4, ["--random", "--alpha", "1.4", "--resolution", "224", "--seed", "1"]),
}
SIZES = [(96, 96), (160, 160), (224, 224), (257, 181), (320, 320), (512, 512), (1024, 1024)]
RUNTIMES = ("featx", "ort", "xnnpack")


def points(quick):
    """(curve, width key, (h, w), batch) in the order they run."""
    pts = []
    for batch in (1, 8):
        for size in SIZES:
            pts.append(("size", "a100", size, batch))
    for batch in (1, 8, 32):
        pts.append(("batch", "a100", (224, 224), batch))
    for batch in (1, 8):
        for key in ("a035", "a100", "a140"):
            pts.append(("width", key, (224, 224), batch))
    if quick:
        pts = [p for p in pts if p[2][0] <= 224 and p[3] <= 8]
    return pts


def export(key, size):
    """The .featx once per width, an ONNX graph per width and size."""
    featx = rb.OUT / f"curve_{key}.featx"
    onnx = rb.OUT / f"curve_{key}_{size[0]}x{size[1]}.onnx"
    args = WIDTHS[key][1]
    if not featx.exists():
        rb.log(f"exporting {key} ...")
        rb.run([rb.PY, rb.ROOT / "tools" / "export_weights.py", *args, "-o", featx])
    if not onnx.exists():
        rb.run([rb.PY, rb.ROOT / "tools" / "export_weights.py", *args, "--onnx", onnx,
                "--size", f"{size[0]}x{size[1]}"])
    return featx, onnx


def measure(bins, key, size, batch, threads, rounds, flops):
    featx, onnx = export(key, size)
    diffs = rb.same_features(bins, f"curve_{key}", 224, batch, threads, size=size, onnx=onnx)
    est_ms = batch * flops / 300e9 * 1e3  # featx near 300 GFLOP/s on 2 cores
    runs = max(3, min(30, int(1000 / max(est_ms, 1e-3))))
    common = ["--threads", threads, "--batch", batch, "--size", f"{size[0]}x{size[1]}",
              "--runs", runs, "--warmup", 2]
    cmds = {
        "featx": [bins["featx"], "bench", "-m", featx, *common],
        "ort": ["node", rb.BENCH / "ort_bench.mjs", "-m", onnx, *common],
        "xnnpack": [bins["xnnpack"], "-m", featx, *common],
    }
    med = {r: [] for r in RUNTIMES}
    rss = {r: [] for r in RUNTIMES}
    workspace = None
    for r in range(rounds):
        order = list(RUNTIMES[r % 3:] + RUNTIMES[:r % 3])
        for name in order:
            rss_file = rb.OUT / "curve_rss.txt"
            v = rb.values(rb.run(["/usr/bin/time", "-f", "%M", "-o", rss_file, *cmds[name]]))
            med[name].append(v[f"{name}_ms_median"])
            rss[name].append(int(rss_file.read_text().split()[-1]))
            if name == "featx":
                workspace = int(v["workspace_bytes"])
    return {"ms": {r: statistics.median(med[r]) for r in RUNTIMES},
            "spread": {r: (min(med[r]), max(med[r])) for r in RUNTIMES},
            "rss_kb": {r: max(rss[r]) for r in RUNTIMES},
            "workspace": workspace, "runs": runs, "diffs": diffs}


def table(rows, peak):
    out = ["| curve | width | size | batch | GFLOP per image | featx ms | ORT ms | XNNPACK ms | featx / best peer "
           "| GFLOP/s featx / ORT / XNN | % of peak featx / ORT / XNN | featx workspace | peak RSS featx / ORT / XNN |",
           "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | --- |"]
    for p in rows:
        ms = p["ms"]
        rates = {r: p["batch"] * p["flops"] / (ms[r] * 1e-3) / 1e9 for r in RUNTIMES}
        best = min(ms["ort"], ms["xnnpack"])
        out.append(
            f"| {p['curve']} | {p['alpha']:g} | {p['size'][0]}x{p['size'][1]} | {p['batch']} | "
            f"{p['flops'] / 1e9:.3f} | {ms['featx']:.2f} | {ms['ort']:.2f} | {ms['xnnpack']:.2f} | "
            f"**{ms['featx'] / best:.2f}** | " + " / ".join(f"{rates[r]:.0f}" for r in RUNTIMES) + " | " +
            " / ".join(f"{100 * rates[r] / peak:.0f}%" for r in RUNTIMES) + f" | {p['workspace'] / 1e6:.2f} MB | " +
            " / ".join(f"{p['rss_kb'][r] / 1024:.0f}" for r in RUNTIMES) + " MiB |")
    return out


def plots(rows, peak, folder):
    """One PNG per curve: ms per image (log) against the varied dimension,
    and GFLOP/s beside it, featx and both peers."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    styles = {"featx": ("featx", "C0", "o"), "ort": ("ONNX Runtime", "C1", "s"), "xnnpack": ("XNNPACK", "C2", "^")}
    for curve, xlabel in (("size", "input pixels (H x W)"), ("batch", "batch"), ("width", "width multiplier")):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        batches = sorted({p["batch"] for p in rows if p["curve"] == curve})
        for b_i, batch in enumerate(batches if curve != "batch" else [None]):
            sel = [p for p in rows if p["curve"] == curve and (batch is None or p["batch"] == batch)]
            if curve == "size":
                sel.sort(key=lambda p: p["size"][0] * p["size"][1])
            xs = [p["size"][0] * p["size"][1] if curve == "size" else p["batch"] if curve == "batch" else p["alpha"]
                  for p in sel]
            for r in RUNTIMES:
                label, color, marker = styles[r]
                line = "-" if b_i == 0 else "--"
                tag = f"{label}" + (f", batch {batch}" if batch is not None and len(batches) > 1 else "")
                per_image = [p["ms"][r] / p["batch"] for p in sel]
                rate = [p["batch"] * p["flops"] / (p["ms"][r] * 1e-3) / 1e9 for p in sel]
                axes[0].plot(xs, per_image, line, color=color, marker=marker, label=tag)
                axes[1].plot(xs, rate, line, color=color, marker=marker, label=tag)
        axes[0].set_ylabel("ms per image")
        axes[0].set_yscale("log")
        axes[1].set_ylabel("GFLOP/s")
        axes[1].axhline(peak, color="grey", lw=0.8, ls=":")
        axes[1].text(axes[1].get_xlim()[0], peak, " 2-core FMA peak", va="bottom", fontsize=8, color="grey")
        axes[1].set_ylim(0, peak * 1.08)
        ticks = sorted({(p["size"][0] * p["size"][1], f"{p['size'][0]}x{p['size'][1]}") if curve == "size" else
                        (p["batch"], str(p["batch"])) if curve == "batch" else (p["alpha"], f"{p['alpha']:g}")
                        for p in rows if p["curve"] == curve})
        for ax in axes:
            ax.set_xlabel(xlabel)
            if curve in ("size", "batch"):
                ax.set_xscale("log")
            ax.set_xticks([t[0] for t in ticks], [t[1] for t in ticks], fontsize=7, rotation=30)
            ax.minorticks_off() if curve != "width" else None
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"MobileNetV2 cost by {curve} ({rows[0]['cpu']}, {rows[0]['threads']} threads)", fontsize=10)
        fig.tight_layout()
        path = folder / f"{curve}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        made.append(path)
    return made


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--build-dir", default=str(rb.OUT / "featx-build"))
    ap.add_argument("--write", help="write the tables as this CPU's cost-curve section of this file")
    ap.add_argument("--plots", default=str(rb.BENCH / "curves"),
                    help="folder for the PNG charts (a subfolder per CPU key is not made: one CPU per folder)")
    ap.add_argument("--quick", action="store_true", help="sizes <= 224, batches <= 8, 1 round: a smoke test")
    args = ap.parse_args()
    if args.quick:
        args.rounds = 1
    t0 = time.time()
    build_dir = Path(args.build_dir)
    bins = {"featx": build_dir / "featx", "xnnpack": rb.OUT / "xnnpack_runner"}
    rb.build_tools(build_dir)
    rb.OUT.mkdir(exist_ok=True)
    export("a100", (224, 224))
    cpu, uarch = rb.cpu_model(), rb.microarchitecture(bins["featx"], rb.OUT / "curve_a100.featx")
    # Before the run: the charts it writes would make the tree look dirty.
    git = rb.subprocess.run(["git", "-C", rb.ROOT, "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()
    res = {}
    rb.fma_peaks(res, rb.Contention(0))
    rows = []
    for curve, key, size, batch in points(args.quick):
        featx_path, _ = export(key, size)
        flops = sum(f for _, f in rb.layer_table(bins["featx"], featx_path, size)[1])
        rb.log(f"{curve}: width {WIDTHS[key][0]}, {size[0]}x{size[1]}, batch {batch} ...")
        p = measure(bins, key, size, batch, args.threads, args.rounds, flops)
        p.update(curve=curve, alpha=WIDTHS[key][0], size=size, batch=batch, flops=flops, cpu=cpu,
                 threads=args.threads)
        rows.append(p)
        rb.log("  ms " + ", ".join(f"{r} {p['ms'][r]:.2f}" for r in RUNTIMES))
    rb.fma_peaks(res, rb.Contention(0))
    isa = "avx512" if res["fma"]["avx512"] > 0 else "avx2"  # NaN when the CPU lacks AVX-512
    peak = rb.core_peak(res["fma"], isa, 2)
    minutes = (time.time() - t0) / 60
    made = plots(rows, peak, Path(args.plots))
    rel = [os.path.relpath(m, Path(args.write).resolve().parent if args.write else rb.BENCH) for m in made]
    text = [f"## Cost curves: {cpu}, {uarch}, {os.cpu_count()} cores", "",
            f"Made by `/usr/bin/python3 bench/cost_curves.py{' --write ' + args.write if args.write else ''}` on "
            f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} ({minutes:.1f} min), git {git}, "
            f"{args.threads} threads, {args.rounds} interleaved rounds per point. 2-core FMA peak "
            f"{peak:.1f} GFLOP/s (bench/fma_peak, best of the start and the end). Method: the docstring of "
            "bench/cost_curves.py; every point passed the same-features check (max |diff| <= 1e-4).", "",
            *table(rows, peak), "",
            "Charts (ms per image, log scale, and GFLOP/s against the peak; solid batch 1, dashed batch 8): " +
            ", ".join(f"[{Path(r).stem}]({r})" for r in rel) + ".", ""]
    text += [f"![{Path(r).stem}]({r})" for r in rel]
    report = "\n".join(text) + "\n"
    print(report)
    if args.write:
        rb.write_section(args.write, f"cost curves: {cpu} / {uarch}", report)
        rb.log(f"wrote this CPU's cost-curve section of {args.write}")


if __name__ == "__main__":
    main()
