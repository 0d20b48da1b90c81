#!/usr/bin/python3
"""What bounds each layer on this CPU: featx layer by layer, per-layer rate
against the one-core FMA peak and the bytes each layer must move.

    /usr/bin/python3 bench/layer_bounds.py [--model tf2_224] [--batch 1] [--write FILE]

Runs `featx bench --profile --no-fuse` (one thread, best of 3 processes) so
every conv is timed alone, and bench/fma_peak for the one-core peak of the
ISA featx ran. Per layer: ms, GFLOP/s, % of that peak, the least bytes it
must move (input + output + weights, float32), GB/s at that, and FLOPs per
byte. A layer at >= 65% of the peak is FMA-bound; below that, one with
under 8 FLOPs per byte (the depthwise convs, 2 x 9 FLOPs per loaded and
stored float) is bound by loads and stores; the rest by what surrounds
the FMAs (short K loops, tails, tile set-up). Unfused: the fused blocks of a
normal run keep the expanded rows in L2, so their depthwise and project
layers run faster there than here (the profile of run_bench.py has those).
"""
import argparse
import collections
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_bench as rb  # noqa: E402

FMA_BOUND, LOW_INTENSITY = 0.65, 8.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tf2_224", choices=[k for k, _, _ in rb.MODELS])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--build-dir", default=str(rb.OUT / "featx-build"))
    ap.add_argument("--write", help="write the table as this CPU's layer-bounds section of this file")
    args = ap.parse_args()
    build_dir = Path(args.build_dir)
    featx = build_dir / "featx"
    rb.build_tools(build_dir)
    model = rb.OUT / f"{args.model}.featx"
    if not model.exists():
        rb.export_models()
    _, layers = rb.layer_shapes(featx, model)
    by_name = {l["name"]: l for l in layers}
    isa = re.search(r"^isa (\S+)", rb.run([featx, "bench", "-m", model, "--runs", 1]), re.M).group(1)
    peaks = rb.values(rb.run([rb.OUT / "fma_peak"]))
    peak = peaks.get(f"fma_{isa}_gflops") or max(peaks.values())
    entries, total = rb.profile(featx, args.model, [(l["name"], l["flops"]) for l in layers], batch=args.batch,
                                threads=1, fuse=False, top=1000)
    rows, by_bound = [], collections.defaultdict(float)
    for name, ms, pct, flops in entries:
        l = by_name[name]
        weights = l["kh"] * l["kw"] * (l["in_c"] if l["kind"] == "depthwise" else l["in_c"] * l["out_c"])
        moved = 4 * (args.batch * (l["in_h"] * l["in_w"] * l["in_c"] + l["out_h"] * l["out_w"] * l["out_c"]) + weights)
        rate = flops / (ms * 1e-3) / 1e9
        intensity = flops / moved
        bound = ("FMA" if rate >= FMA_BOUND * peak else "loads/stores" if intensity < LOW_INTENSITY
                 else "around the FMAs")
        by_bound[bound] += ms
        shape = f"{l['kh']}x{l['kw']} s{l['stride']} {l['in_c']}->{l['out_c']} at {l['in_h']}x{l['in_w']}"
        rows.append(f"| {name} | {shape} | {ms:.3f} | {rate:.0f} | {100 * rate / peak:.0f}% | {moved / 1e6:.2f} | "
                    f"{moved / (ms * 1e-3) / 1e9:.0f} | {intensity:.1f} | {bound} |")
    cpu, uarch = rb.cpu_model(), rb.microarchitecture(featx, model)
    out = [f"## Layer bounds: {cpu}, {uarch}", "",
           f"Made by `/usr/bin/python3 bench/layer_bounds.py{' --write ' + args.write if args.write else ''}`: "
           f"{args.model}, batch {args.batch}, 1 thread, layer by layer (`--no-fuse`), ISA {isa}, one-core FMA peak "
           f"{peak:.1f} GFLOP/s; profile total {total:.2f} ms. Method: the docstring of bench/layer_bounds.py.", "",
           "Time by bound: " + ", ".join(f"{b} {ms:.2f} ms ({100 * ms / total:.0f}%)"
                                         for b, ms in sorted(by_bound.items(), key=lambda kv: -kv[1])) + ".", "",
           "| layer | shape | ms | GFLOP/s | % of peak | MB moved (least) | GB/s | FLOP/byte | bound |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |", *rows]
    report = "\n".join(out) + "\n"
    print(report)
    if args.write:
        rb.write_section(args.write, f"layer bounds: {cpu} / {uarch}", report)


if __name__ == "__main__":
    main()
