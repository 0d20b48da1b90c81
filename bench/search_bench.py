#!/usr/bin/python3
"""Similarity search: featx exact search vs FAISS vs numpy's brute force.

    /usr/bin/python3 bench/search_bench.py [--sizes 1e4,1e5,1e6] [--rounds 5] [--batch 64]
        [--single 5] [--threads 2] [--build-dir build-search] [--hnsw-max 10000] [--markdown FILE]

Per size N (random unit vectors of 1280 dims, numpy's default_rng, float32):
  1. the vectors are written once to bench/out/search/db.npy, indexed with
     `featx index -o db.fxi --faiss ivf db.npy` (build times from its stderr;
     for N <= --hnsw-max also an HNSW index), and db.npy is deleted again;
     numpy then reads the very rows featx searches (np.memmap of db.fxi).
  2. queries: 64 random unit vectors ("rand": the adversarial case for any
     approximate index, their neighbours are barely nearer than the rest) and
     64 noisy copies of random database rows ("near": cosine ~0.89 to their
     source, the near-duplicate search photos are about).
  3. bench/search_bench.cpp runs as a co-process (the index is loaded once);
     ROUNDS interleaved rounds, the engine order rotating, each engine timing
     SINGLE one-query searches (latency) and one batch of BATCH queries
     (throughput). numpy (single-threaded reference BLAS here: Debian's
     libblas3) times `q @ db.T` + argpartition + sorting the k, on smaller
     batches at large N (it takes seconds per query there).
  4. recall@10 of FAISS against exact on the batch queries, for a few
     nprobe; a check that numpy's top 10 equal featx's for some queries.
Reported: medians over rounds of the per-round medians, and their spread.
Everything goes to bench/out/search (large files are removed per size).
"""
import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DIMS = 1280
K = 10


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def unit_rows(x):
    x = np.asarray(x, np.float64)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_database(path, n, seed):
    """n random unit vectors, written in chunks (1e6 x 1280 is 5.1 GB)."""
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, DIMS))
    step = 65536
    for i in range(0, n, step):
        m = min(step, n - i)
        out[i:i + m] = unit_rows(rng.standard_normal((m, DIMS), dtype=np.float32))
    out.flush()
    del out


def make_queries(n, count, seed, db):
    rng = np.random.default_rng(seed + 1)
    rand = unit_rows(rng.standard_normal((count, DIMS), dtype=np.float32))
    src = rng.choice(n, size=count, replace=False)
    noise = unit_rows(rng.standard_normal((count, DIMS), dtype=np.float32)) * 0.5
    near = unit_rows(np.asarray(db[src], np.float64) + noise)
    return rand, near, src


def numpy_search(q, db, k):
    s = q @ db.T
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    ps = np.take_along_axis(s, part, axis=1)
    order = np.argsort(-ps, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(ps, order, axis=1)


class Coprocess:
    def __init__(self, args):
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.header = json.loads(self.p.stdout.readline())

    def ask(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        reply = self.p.stdout.readline()
        if not reply:
            raise RuntimeError(f"search_bench died on: {line}")
        return json.loads(reply)

    def close(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.flush()
        self.p.wait()


def num(x):
    """3 significant digits, no exponent: 0.746, 18.1, 4423."""
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}" if x >= 0.001 else f"{x:.2g}"


def spread(values):
    return f"{num(min(values))}–{num(max(values))}"


def power(n):
    e = int(round(np.log10(n)))
    return f"10^{e}" if 10 ** e == n else str(n)


def run_size(n, args, featx, bench_bin, work):
    seed = 1000 + n
    npy = work / "db.npy"
    fxi = work / "db.fxi"
    t = time.perf_counter()
    make_database(npy, n, seed)
    gen_s = time.perf_counter() - t
    log(f"N={n}: vectors generated in {gen_s:.1f} s")
    db_gen = np.load(npy, mmap_mode="r")
    rand, near, near_src = make_queries(n, args.batch, seed, db_gen)
    del db_gen
    np.save(work / "rand.npy", rand)
    np.save(work / "near.npy", near)
    build = {}
    faiss_args = []
    have_faiss = args.faiss
    cmd = [featx, "index", "-o", str(fxi), "--threads", str(args.threads), str(npy)]
    if have_faiss:
        cmd[2:2] = ["--faiss", "ivf"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"featx index failed: {proc.stderr}")
    m = re.search(r"into \S+ in ([\d.]+) s", proc.stderr)
    build["featx index"] = float(m.group(1))
    if have_faiss:
        m = re.search(r"FAISS (.+) in \S+ in ([\d.]+) s \((.*)\)", proc.stderr)
        build["ivf"] = float(m.group(2))
        build["ivf_phases"] = m.group(3)
        faiss_args += ["--faiss", f"ivf={fxi}.faiss"]
    if have_faiss and n <= args.hnsw_max:
        hfxi = work / "db_hnsw.fxi"
        proc = subprocess.run([featx, "index", "-o", str(hfxi), "--faiss", "hnsw", "--threads", str(args.threads),
                               str(npy)], capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"featx index --faiss hnsw failed: {proc.stderr}")
        m = re.search(r"FAISS (.+) in \S+ in ([\d.]+) s \((.*)\)", proc.stderr)
        build["hnsw"] = float(m.group(2))
        build["hnsw_phases"] = m.group(3)
        faiss_args += ["--faiss", f"hnsw={hfxi}.faiss"]
    os.remove(npy)
    log(f"N={n}: built {build}")

    co = Coprocess([bench_bin, "--index", str(fxi), *faiss_args, "--queries", f"rand={work / 'rand.npy'}",
                    "--queries", f"near={work / 'near.npy'}", "--threads", str(args.threads), "--k", str(K)])
    header = co.header
    stride = header["dims"] + (-header["dims"]) % 16
    db = np.memmap(fxi, dtype=np.float32, mode="r", offset=64, shape=(n, stride))[:, :DIMS]
    engines = ["exact"] + list(header["faiss"].keys())

    # Warm-up (page cache, mappings) and the same-function check: numpy's top 10 = featx's.
    co.ask(f"exact rand batch {args.batch}")
    for e in engines[1:]:
        co.ask(f"{e} rand batch {args.batch} 0")
    np_batch = args.batch if n <= 10000 else (16 if n <= 100000 else 4)
    np_single = args.single if n <= 100000 else min(args.single, 3)
    idx, _ = numpy_search(rand[:4], db, K)
    featx_ids = co.ask("ids exact rand 4")["ids"]
    ok = [list(map(int, idx[i])) for i in range(4)] == featx_ids
    check_lines = [f"numpy top-{K} == featx exact top-{K} for 4 queries: {ok}"]
    if not ok:
        sys.exit(f"numpy and featx disagree: {idx.tolist()} vs {featx_ids}")
    co.ask(f"exact near batch {args.batch}")
    near_top = [ids[0] for ids in co.ask(f"ids exact near {args.batch}")["ids"]]
    found = sum(int(a) == int(b) for a, b in zip(near_top, near_src))
    check_lines.append(f"near-duplicate queries whose exact top-1 is their source row: {found} of {args.batch}")

    rounds = {e: {"single": [], "batch": []} for e in engines + ["numpy"]}
    order = engines + ["numpy"]
    for r in range(args.rounds):
        rot = order[r % len(order):] + order[:r % len(order)]
        for e in rot:
            if e == "numpy":
                times = []
                for i in range(np_single):
                    t = time.perf_counter()
                    numpy_search(rand[i:i + 1], db, K)
                    times.append((time.perf_counter() - t) * 1e3)
                rounds[e]["single"].append(statistics.median(times))
                t = time.perf_counter()
                numpy_search(rand[:np_batch], db, K)
                rounds[e]["batch"].append(np_batch / (time.perf_counter() - t))
                continue
            p = "" if e == "exact" else " 0"
            single = co.ask(f"{e} rand single {args.single}{p}")["ms"]
            rounds[e]["single"].append(statistics.median(single))
            batch = co.ask(f"{e} rand batch {args.batch}{p}")["ms"][0]
            rounds[e]["batch"].append(args.batch / (batch / 1e3))
        log(f"N={n}: round {r + 1}/{args.rounds}: " + ", ".join(
            f"{e} {rounds[e]['single'][-1]:.2f} ms, {rounds[e]['batch'][-1]:.0f} q/s" for e in order))

    # Recall against exact, per parameter (timed once: a sweep, not a race).
    co.ask(f"exact near batch {args.batch}")
    co.ask(f"exact rand batch {args.batch}")
    sweep = []
    for e in engines[1:]:
        desc = header["faiss"][e]["describe"]
        if e == "ivf":
            nlist = int(re.search(r"nlist=(\d+)", desc).group(1))
            params = sorted({max(1, nlist // 64), 0, max(1, nlist // 4)})
        else:
            params = [0, 256]
        for p in params:
            t_rand = co.ask(f"{e} rand batch {args.batch} {p}")["ms"][0]
            rec = co.ask(f"recall {e} rand {args.batch}")
            co.ask(f"{e} near batch {args.batch} {p}")
            rec_near = co.ask(f"recall {e} near {args.batch}")
            single = co.ask(f"{e} rand single {args.single} {p}")["ms"]
            sweep.append({"engine": e, "param": p, "describe": desc, "recall10_rand": rec["recall_at_k"],
                          "recall10_near": rec_near["recall_at_k"], "recall1_near": rec_near["recall_at_1"],
                          "single_ms": statistics.median(single), "batch_qps": args.batch / (t_rand / 1e3)})
    co.close()
    del db
    result = {
        "n": n, "header": header, "build_s": build, "gen_s": gen_s, "np_batch": np_batch, "np_single": np_single,
        "rounds": rounds, "sweep": sweep, "check": check_lines,
        "fxi_bytes": fxi.stat().st_size,
    }
    for f in work.glob("db*"):
        f.unlink()
    return result


def ratio_text(res):
    r = res["rounds"]
    parts = []
    for e in [e for e in r if e != "exact"]:
        single = statistics.median(o / x for o, x in zip(r[e]["single"], r["exact"]["single"]))
        batch = statistics.median(x / o for o, x in zip(r[e]["batch"], r["exact"]["batch"]))
        parts.append(f"{e} {single:.2f}x / {batch:.2f}x")
    return f"{power(res['n'])} (1 query / batch): " + ", ".join(parts)


def markdown(results, args, cpu, commit, command):
    lines = []
    lines.append(f"`{command}`, git {commit}; {cpu}; {args.threads} thread{'s' if args.threads > 1 else ''} for "
                 f"featx and FAISS, numpy single-threaded (reference BLAS).")
    lines.append("")
    lines.append("| vectors | engine | 1 query ms (median, spread) | batch queries/s (median, spread) | recall@10 random q | "
                 "recall@10 / @1 near-dup q | build s |")
    lines.append("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for res in results:
        n = res["n"]
        rounds = res["rounds"]
        by_default = {s["engine"]: s for s in res["sweep"] if s["param"] == 0}
        for e, label in [("exact", f"featx exact ({res['header']['isa']})")] + \
                [(e, "FAISS " + res["header"]["faiss"][e]["describe"]) for e in res["header"]["faiss"]] + \
                [("numpy", "numpy `q @ db.T` + argpartition")]:
            single, batch = rounds[e]["single"], rounds[e]["batch"]
            if e == "exact":
                rec, rec_near, build = "1 (reference)", "1 / 1", f"{res['build_s']['featx index']:.1f}"
            elif e == "numpy":
                rec, rec_near, build = "1", "1 / 1", "—"
            else:
                s = by_default[e]
                rec, rec_near = f"{s['recall10_rand']:.3f}", f"{s['recall10_near']:.3f} / {s['recall1_near']:.3f}"
                build = f"{res['build_s'][e]:.1f}"
            bq = f" (batch {res['np_batch']})" if e == "numpy" else f" (batch {args.batch})"
            lines.append(f"| {power(n)} | {label} | {num(statistics.median(single))} ({spread(single)}) | "
                         f"{num(statistics.median(batch))} ({spread(batch)}){bq} | {rec} | {rec_near} | {build} |")
    lines.append("")
    lines.append("Paired ratios (median over rounds of the ratio within a round; > 1: featx exact is faster): "
                 + "; ".join(ratio_text(res) for res in results) + ".")
    lines.append("")
    lines.append("Building and opening (seconds; opening a .fxi checks every value, so it reads the whole file; "
                 "the page cache was cold for large N after the build):")
    lines.append("")
    lines.append("| vectors | .fxi GB | featx index | open .fxi | FAISS build (phases) | FAISS load |")
    lines.append("| ---: | ---: | ---: | ---: | --- | --- |")
    for res in results:
        h, b = res["header"], res["build_s"]
        fb = "; ".join(f"{e}: {b[e]:.1f} ({b.get(e + '_phases', '')})" for e in h["faiss"])
        fl = "; ".join(f"{e}: {h['faiss'][e]['load_ms'] / 1e3:.1f}" for e in h["faiss"])
        lines.append(f"| {power(res['n'])} | {res['fxi_bytes'] / 1e9:.2f} | {b['featx index']:.1f} | "
                     f"{h['load_ms'] / 1e3:.2f} | {fb or '—'} | {fl or '—'} |")
    lines.append("")
    lines.append("Checks: " + "; ".join(f"{power(res['n'])}: " + ", ".join(res["check"]) for res in results) + ".")
    lines.append("")
    lines.append("Recall and speed of FAISS per parameter (one batch and one set of single queries each, not interleaved):")
    lines.append("")
    lines.append("| vectors | index | nprobe / efSearch | 1 query ms | batch queries/s | recall@10 random q | "
                 "recall@10 / @1 near-dup q |")
    lines.append("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for res in results:
        for s in res["sweep"]:
            d = s["describe"]
            p = s["param"] or (re.search(r"(nprobe|efSearch)=(\d+)", d).group(2) + " (default)")
            lines.append(f"| {power(res['n'])} | {d.split(' n')[0].split(' M')[0]} | {p} | {num(s['single_ms'])} | "
                         f"{num(s['batch_qps'])} | {s['recall10_rand']:.3f} | {s['recall10_near']:.3f} / "
                         f"{s['recall1_near']:.3f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1e4,1e5,1e6")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--single", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hnsw-max", type=int, default=10000)
    ap.add_argument("--build-dir", default=str(ROOT / "build-search"))
    ap.add_argument("--out", default=str(BENCH / "out" / "search"))
    ap.add_argument("--markdown")
    ap.add_argument("--no-faiss", dest="faiss", action="store_false")
    ap.add_argument("--report", metavar="RESULTS.json", help="only print the tables of an earlier run's results")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            saved = json.load(f)
        print(markdown(saved["results"], argparse.Namespace(**saved["args"]), saved["cpu"], saved["commit"],
                       saved["command"]))
        return
    build = Path(args.build_dir)
    subprocess.run(["cmake", "--build", str(build), "--target", "featx_cli", "featx_search_bench", "-j2"], check=True,
                   stdout=subprocess.DEVNULL)
    featx = str(build / "featx")
    bench_bin = str(build / "featx_search_bench")
    if args.faiss and "built without FAISS" in subprocess.run(
            [featx, "search", "-i", "/nonexistent.fxi", "--faiss", "q.npy"], capture_output=True, text=True).stderr:
        log("featx was built without FAISS: exact and numpy only")
        args.faiss = False
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    cpu = "unknown CPU"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = re.search(r"Model name:\s*(.+)", lscpu).group(1).strip()
        fam = re.search(r"CPU family:\s*(\d+)", lscpu)
        mod = re.search(r"^Model:\s*(\d+)", lscpu, re.M)
        cores = re.search(r"^CPU\(s\):\s*(\d+)", lscpu, re.M).group(1)
        cpu = (f"{model} (family {fam.group(1) if fam else '?'} model {mod.group(1) if mod else '?'}), "
               f"{cores} cores (lscpu)")
    except Exception:
        pass
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    command = (f"/usr/bin/python3 bench/search_bench.py {' '.join(sys.argv[1:])}` on "
               f"`{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}")
    results = []
    t0 = time.perf_counter()
    for n in [int(float(s)) for s in args.sizes.split(",")]:
        results.append(run_size(n, args, featx, bench_bin, work))
        with open(work / f"results_t{args.threads}.json", "w") as f:
            json.dump({"results": results, "args": vars(args), "cpu": cpu, "commit": commit, "command": command}, f,
                      indent=1)
    text = markdown(results, args, cpu, commit, command)
    print(text)
    log(f"done in {(time.perf_counter() - t0) / 60:.1f} min")
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")


if __name__ == "__main__":
    main()
