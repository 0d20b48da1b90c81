"""`featx extract` over many inputs, and `featx merge`, from the outside.

docs/batch_extraction.md is the contract: the streamed .npy (256-byte
header, names and errors files beside it, `.part` files renamed at the
end), failed inputs reported and skipped, the input list (directories
sorted, --recursive, --list FILE|-), results that depend on neither
--decoders, --batch nor --threads, flat memory, --resume after SIGKILL,
--shard K/N through GNU parallel and the scheduler variables, featx merge,
--l2, and the progress bar on a terminal only.

Inputs are symlinks to the shared photos (and corrupt files) in a temporary
directory. Every comparison of outputs is byte for byte. Run through ctest
(cli_extract_batch); by hand:

  cd tests/python && FEATX_BIN=../../build/featx FEATX_TEST_MODELS_DIR=../../build/test_models \
      /usr/bin/python3 -m unittest -v check_extract_batch

Named check_* so that the python_exporter discover run leaves it alone.
"""

import filecmp
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

import support

REPO = support.REPO_ROOT
BIN = os.environ.get("FEATX_BIN") or os.path.join(REPO, "build", "featx")
MODELS_DIR = os.environ.get("FEATX_TEST_MODELS_DIR") or os.path.join(REPO, "build", "test_models")
SMALL = os.path.join(MODELS_DIR, "random_a0.35_r96_s1_c0.featx")          # 1280 features, fast
TF2 = os.path.join(MODELS_DIR, "tflite_tf2_mobilenet_v2_1.0_224_ptq.featx")  # slow enough to kill mid-run
# One network thread where the thread count is not what a test is about: on 2 cores busy with
# other jobs an OpenMP team of 2 runs the small model over ten times slower.
FAST = ["-m", SMALL, "--threads", "1"]
PHOTOS = ["bird.bmp", "cat.bmp", "grace_hopper.bmp", "kite_and_cold.jpg", "parrot.jpg", "pets.jpg", "squat.bmp"]

SUMMARY = re.compile(r"^featx: (\d+) done, (\d+) skipped \(resumed\), (\d+) failed, (\d+(?:\.\d+)?) images/s")
FAILED_LINE = re.compile(r"^featx: error: (\d+) of (\d+) inputs failed \(listed in (.+)\)$")

ROOT = None  # the temporary directory of this module's inputs and outputs


def p(*parts) -> str:
    return os.path.join(ROOT, *parts)


def setUpModule():
    global ROOT
    missing = [f for f in PHOTOS if not os.path.isfile(os.path.join(support.IMAGES, f))]
    if not os.path.isdir(support.SHARED) or missing:
        support._loud_skip(f"shared photos not found in {support.IMAGES} (set FEATX_SHARED_DIR)")
    if not os.path.isfile(BIN):
        raise AssertionError(f"featx binary not found at {BIN} (build featx_cli, or set FEATX_BIN)")
    for model in (SMALL, TF2):
        if not os.path.isfile(model):
            raise AssertionError(f"test model {model} not found (build featx_test_models, "
                                 f"or set FEATX_TEST_MODELS_DIR)")
    ROOT = tempfile.mkdtemp(prefix="featx_extract_batch_")
    os.makedirs(p("photos"))
    for f in PHOTOS:
        os.symlink(os.path.join(support.IMAGES, f), p("photos", f))
    os.makedirs(p("bad"))
    with open(os.path.join(support.IMAGES, "parrot.jpg"), "rb") as f:
        jpeg = f.read()
    with open(p("bad", "trunc.jpg"), "wb") as f:  # a JPEG cut at 40%: libjpeg runs out of data
        f.write(jpeg[:len(jpeg) * 2 // 5])
    with open(p("bad", "noise.png"), "wb") as f:  # no image at all
        f.write(random.Random(7).randbytes(4096))


def tearDownModule():
    if ROOT and not os.environ.get("FEATX_KEEP_TEST_DIR"):
        shutil.rmtree(ROOT, ignore_errors=True)


def photo(name: str) -> str:
    return p("photos", name)


def trunc() -> str:
    return p("bad", "trunc.jpg")


def noise() -> str:
    return p("bad", "noise.png")


def missing() -> str:
    return p("bad", "not_there.jpg")


def clean_env(**extra) -> dict:
    """The environment without scheduler variables (a CI job may run in a Slurm array)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SLURM_") and k != "JOB_COMPLETION_INDEX"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def featx(*args, env=None, stdin_text=None) -> subprocess.CompletedProcess:
    kw = {"input": stdin_text} if stdin_text is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run([BIN, *map(str, args)], capture_output=True, text=True,
                          env=env if env is not None else clean_env(), timeout=600, **kw)


def mkdir(*parts) -> str:
    d = p(*parts)
    os.makedirs(d, exist_ok=True)
    return d


def link_dir(name: str, entries) -> str:
    """A directory of symlinks: entries [(relative name, target), ...]."""
    d = mkdir(name)
    for rel, target in entries:
        os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
        os.symlink(target, os.path.join(d, rel))
    return d


def write_list(name: str, paths) -> str:
    path = p(name)
    with open(path, "w") as f:
        f.write("".join(x + "\n" for x in paths))
    return path


def lines_of(path: str):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return text.splitlines()


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def complete_lines(path: str) -> int:
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def part_files(d: str):
    return sorted(f for f in os.listdir(d) if f.endswith(".part"))


class Checks(unittest.TestCase):
    def assertSameBytes(self, a: str, b: str):
        self.assertTrue(os.path.isfile(a), f"{a} missing")
        self.assertTrue(os.path.isfile(b), f"{b} missing")
        self.assertTrue(filecmp.cmp(a, b, shallow=False), f"{a} and {b} differ")

    def assertSameOutput(self, a: str, b: str, errors: bool):
        """OUT.npy, its names and (when `errors`) its errors file equal byte for byte; without
        errors neither has an errors file."""
        self.assertSameBytes(a, b)
        self.assertSameBytes(a + ".names.txt", b + ".names.txt")
        if errors:
            self.assertSameBytes(a + ".errors.txt", b + ".errors.txt")
        else:
            self.assertFalse(os.path.exists(a + ".errors.txt"), a + ".errors.txt")
            self.assertFalse(os.path.exists(b + ".errors.txt"), b + ".errors.txt")

    def assertOk(self, proc, what="featx"):
        self.assertEqual(proc.returncode, 0, f"{what} failed: {proc.stderr}")

    def assertOneErrorLine(self, proc, *needles):
        """Exit status non-zero and exactly one stderr line, 'featx: error: ...' holding every needle."""
        self.assertNotEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stderr.splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertTrue(lines[0].startswith("featx: error: "), lines[0])
        for n in needles:
            self.assertIn(n, lines[0])
        return lines[0]

    def summary(self, proc):
        found = [SUMMARY.match(l) for l in proc.stderr.splitlines() if SUMMARY.match(l)]
        self.assertEqual(len(found), 1, f"one summary line expected in: {proc.stderr}")
        return tuple(int(x) for x in found[0].groups()[:3])

    def assertHeader256(self, npy: str, rows: int, row_floats: int):
        with open(npy, "rb") as f:
            head = f.read(10)
        self.assertEqual(head[:6], b"\x93NUMPY")
        self.assertEqual(10 + head[8] + 256 * head[9], 256, "streamed .npy header is not 256 bytes")
        self.assertEqual(os.path.getsize(npy), 256 + rows * row_floats * 4)


# --- 1. the streamed output, failures, the input list ------------------------------------------

class StreamedOutputTest(Checks):
    def test_directory_with_failed_inputs(self):
        # Sorted: a_, b_ (fails), c_, d_ (fails), e_.
        d = link_dir("mixed", [("a_cat.bmp", photo("cat.bmp")), ("b_trunc.jpg", trunc()),
                               ("c_parrot.jpg", photo("parrot.jpg")), ("d_noise.png", noise()),
                               ("e_pets.jpg", photo("pets.jpg"))])
        with open(os.path.join(d, "notes.txt"), "w") as f:
            f.write("not an image: not an input\n")
        outdir = mkdir("mixed_out")
        out = os.path.join(outdir, "out.npy")
        proc = featx("extract", *FAST, "--batch", "2", "-o", out, d)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        good = [os.path.join(d, n) for n in ("a_cat.bmp", "c_parrot.jpg", "e_pets.jpg")]
        bad = [os.path.join(d, n) for n in ("b_trunc.jpg", "d_noise.png")]

        lines = proc.stderr.splitlines()
        self.assertEqual(len(lines), 4, proc.stderr)
        for line, path in zip(lines[:2], bad):
            self.assertTrue(line.startswith(f"featx: error: {path}: "), line)
        self.assertEqual(self.summary(proc), (3, 0, 2))
        self.assertTrue(SUMMARY.match(lines[2]), lines[2])
        m = FAILED_LINE.match(lines[3])
        self.assertTrue(m, lines[3])
        self.assertEqual((m.group(1), m.group(2), m.group(3)), ("2", "5", out + ".errors.txt"))

        rows = np.load(out)
        self.assertEqual(rows.dtype, np.float32)
        self.assertEqual(rows.shape, (3, 1280))
        self.assertHeader256(out, 3, 1280)
        self.assertEqual(lines_of(out + ".names.txt"), good)
        errors = lines_of(out + ".errors.txt")
        self.assertEqual([e.split("\t")[0] for e in errors], bad)
        for e, path, line in zip(errors, bad, lines):
            self.assertEqual(e.count("\t"), 1, e)
            message = e.split("\t")[1]
            self.assertTrue(message.startswith(path + ": "), e)
            self.assertEqual(line, "featx: error: " + message)  # the same text on stderr
        self.assertIn("truncated", errors[0].split("\t")[1].lower())
        self.assertEqual(part_files(outdir), [])
        self.assertEqual(sorted(os.listdir(outdir)), ["out.npy", "out.npy.errors.txt", "out.npy.names.txt"])

        # Rows belong to their names: the same images in the other order give the same rows.
        rev = os.path.join(outdir, "rev.npy")
        self.assertOk(featx("extract", *FAST, "-o", rev, *reversed(good)))
        self.assertEqual(lines_of(rev + ".names.txt"), good[::-1])
        np.testing.assert_array_equal(np.load(rev)[::-1], rows)
        self.assertFalse(np.array_equal(rows[0], rows[1]))

    def test_one_failing_input_prints_one_line(self):
        outdir = mkdir("single_out")
        listed = write_list("single.list", [missing()])
        cases = [("truncated", [trunc()], trunc()), ("noise", [noise()], noise()),
                 ("missing", [missing()], missing()), ("listed", ["--list", listed], missing())]
        for name, inputs, path in cases:
            for ext in (".npy", ".csv"):
                with self.subTest(case=name, output=ext):
                    out = os.path.join(outdir, name + ext)
                    proc = featx("extract", *FAST, "-o", out, *inputs)
                    self.assertEqual(proc.returncode, 1, proc.stderr)
                    self.assertEqual(proc.stdout, "")
                    self.assertOneErrorLine(proc, f"featx: error: {path}: ")
                    self.assertEqual([f for f in os.listdir(outdir) if f.startswith(name + ext)], [],
                                     "a failed single-input run leaves no files")

    def test_directories_sorted_and_recursive(self):
        d = link_dir("tree", [("e.bmp", photo("cat.bmp")), ("c9.bmp", photo("cat.bmp")),
                              ("a.jpg", photo("pets.jpg")), ("c10.bmp", photo("bird.bmp")),
                              ("B.bmp", photo("cat.bmp")), ("d_sub/x.bmp", photo("bird.bmp")),
                              ("d_sub/w/z.bmp", photo("pets.jpg")), ("link", p("photos"))])
        with open(os.path.join(d, "notes.txt"), "w") as f:
            f.write("text\n")
        flat = [os.path.join(d, n) for n in ("B.bmp", "a.jpg", "c10.bmp", "c9.bmp", "e.bmp")]
        deep = [os.path.join(d, n) for n in ("B.bmp", "a.jpg", "c10.bmp", "c9.bmp", "d_sub/w/z.bmp",
                                             "d_sub/x.bmp", "e.bmp")]
        outdir = mkdir("tree_out")
        for name, flags, want in (("flat", [], flat), ("long", ["--recursive"], deep), ("short", ["-r"], deep)):
            with self.subTest(flags=flags):
                out = os.path.join(outdir, name + ".npy")
                proc = featx("extract", *FAST, *flags, "-o", out, d)
                self.assertOk(proc)
                self.assertEqual(lines_of(out + ".names.txt"), want)
                self.assertEqual(np.load(out).shape, (len(want), 1280))
                self.assertEqual(self.summary(proc), (len(want), 0, 0))
                self.assertFalse(os.path.exists(out + ".errors.txt"))
        self.assertSameOutput(os.path.join(outdir, "long.npy"), os.path.join(outdir, "short.npy"),
                              errors=False)
        self.assertEqual(part_files(outdir), [])

    def test_list_file_and_stdin(self):
        # Blank lines are skipped and a trailing CR dropped (docs/batch_extraction.md); the
        # positional inputs come first.
        text = f"{photo('cat.bmp')}\n\n{missing()}\r\n{photo('pets.jpg')}"
        listed = p("inputs.list")
        with open(listed, "w", newline="") as f:
            f.write(text)
        outdir = mkdir("list_out")
        a, b = os.path.join(outdir, "file.npy"), os.path.join(outdir, "stdin.npy")
        for out, args, stdin_text in ((a, ["--list", listed], None), (b, ["--list", "-"], text)):
            with self.subTest(list=args[1]):
                proc = featx("extract", *FAST, "-o", out, photo("bird.bmp"), *args, stdin_text=stdin_text)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                lines = proc.stderr.splitlines()
                self.assertEqual(lines[0], f"featx: error: {missing()}: no such file")
                self.assertEqual(self.summary(proc), (3, 0, 1))
                self.assertEqual(lines[-1], f"featx: error: 1 of 4 inputs failed (listed in {out}.errors.txt)")
                self.assertEqual(lines_of(out + ".names.txt"), [photo("bird.bmp"), photo("cat.bmp"),
                                                                 photo("pets.jpg")])
                self.assertEqual(lines_of(out + ".errors.txt"), [f"{missing()}\t{missing()}: no such file"])
                self.assertEqual(np.load(out).shape, (3, 1280))
        self.assertSameOutput(a, b, errors=True)
        self.assertEqual(part_files(outdir), [])

    def test_earlier_outputs_are_replaced(self):
        outdir = mkdir("again_out")
        out = os.path.join(outdir, "out.npy")
        self.assertEqual(featx("extract", *FAST, "-o", out, photo("cat.bmp"), trunc()).returncode, 1)
        self.assertTrue(os.path.isfile(out + ".errors.txt"))
        proc = featx("extract", *FAST, "-o", out, photo("pets.jpg"), photo("bird.bmp"))
        self.assertOk(proc)
        self.assertFalse(os.path.exists(out + ".errors.txt"), "errors file of the earlier run left behind")
        self.assertEqual(lines_of(out + ".names.txt"), [photo("pets.jpg"), photo("bird.bmp")])
        self.assertEqual(np.load(out).shape, (2, 1280))


# --- 2. bit-identical whatever --decoders, --batch, --threads ------------------------------------

class IndependenceTest(Checks):
    def test_decoders_batch_threads(self):
        inputs = [photo(f) for f in PHOTOS] + [photo(f) for f in reversed(PHOTOS)]
        inputs.insert(5, trunc())
        inputs.insert(11, noise())
        listed = write_list("independence.list", inputs)
        outdir = mkdir("independence_out")
        runs = [(0, 1, 1), (1, 5, 2), (3, 5, 1), (0, 5, 2), (3, 1, 2), (1, 1, 1)]
        outs = []
        for decoders, batch, threads in runs:
            out = os.path.join(outdir, f"d{decoders}_b{batch}_t{threads}.npy")
            proc = featx("extract", "-m", SMALL, "--decoders", decoders, "--batch", batch, "--threads", threads,
                         "-o", out, "--list", listed)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertEqual(self.summary(proc), (14, 0, 2))
            outs.append(out)
        first = outs[0]
        self.assertEqual(np.load(first).shape, (14, 1280))
        self.assertEqual(lines_of(first + ".names.txt"), [x for x in inputs if x not in (trunc(), noise())])
        for out in outs[1:]:
            with self.subTest(run=os.path.basename(out)):
                self.assertSameOutput(first, out, errors=True)
        self.assertEqual(part_files(outdir), [])


# --- 3. memory stays flat ------------------------------------------------------------------------

# Peak RSS from rusage is polluted by the RSS of the process that forked: a fork of this test
# (numpy loaded, ~40 MB) would hide featx's own ~10 MB. So a fresh small Python forks featx and
# reports wait4's ru_maxrss, with its own RSS at the fork (the floor of the measure) beside it.
RSS_CHILD = r"""
import os, sys
with open("/proc/self/status") as f:  # what the fork of featx starts with
    own = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0]
pid = os.fork()
if pid == 0:
    err = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(err, 2)
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, own)
"""


def peak_rss_kb(args, stderr_path):
    """Runs featx; -> (exit status, its peak RSS in kB, the floor of that measure in kB)."""
    proc = subprocess.run([sys.executable, "-S", "-I", "-c", RSS_CHILD, stderr_path, BIN, *map(str, args)],
                          capture_output=True, text=True, env=clean_env(), stdin=subprocess.DEVNULL, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"the RSS probe failed: {proc.stderr}")
    rc, rss, floor = map(int, proc.stdout.split())
    return rc, rss, floor


class MemoryTest(Checks):
    def test_peak_rss_does_not_grow_with_the_inputs(self):
        small = ["cat.bmp", "bird.bmp", "pets.jpg"]
        d = link_dir("many", [(f"{i:04d}_{small[i % 3]}", photo(small[i % 3])) for i in range(800)])
        few = write_list("few.list", [os.path.join(d, n) for n in sorted(os.listdir(d))[:100]])
        outdir = mkdir("memory_out")
        rss = {}
        for name, inputs, n in (("few", ["--list", few], 100), ("all", [d], 800)):
            out = os.path.join(outdir, name + ".npy")
            rc, rss[name], floor = peak_rss_kb(["extract", *FAST, "--pool", "none", "-o", out, *inputs],
                                               os.path.join(outdir, name + ".stderr"))
            self.assertEqual(rc, 0, lines_of(os.path.join(outdir, name + ".stderr")))
            self.assertGreater(rss[name], floor, "the measure sees only the process that forked featx")
            self.assertEqual(np.load(out, mmap_mode="r").shape, (n, 3, 3, 1280))
            self.assertEqual(len(lines_of(out + ".names.txt")), n)
        print(f"\npeak RSS: 100 inputs {rss['few']} kB, 800 inputs {rss['all']} kB (floor {floor} kB; "
              f"700 more rows of 46 kB held would be +{700 * 46080 // 1024} kB)")
        self.assertLess(rss["all"] - rss["few"], 10 * 1024)


# --- 4. SIGKILL and --resume ---------------------------------------------------------------------

def kill_when_committed(test, proc, names_part, lines, timeout=300.0):
    """SIGKILLs `proc` once `names_part` has `lines` complete lines."""
    deadline = time.monotonic() + timeout
    while complete_lines(names_part) < lines:
        if proc.poll() is not None:
            test.fail(f"featx ended (status {proc.returncode}) before {names_part} had {lines} lines")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            test.fail(f"{names_part} never reached {lines} lines")
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    test.assertEqual(proc.returncode, -signal.SIGKILL, "killed before it could finish")


class ResumeTest(Checks):
    def test_resume_needs_an_npy_output(self):
        outdir = mkdir("resume_npy_out")
        for out in ("out.csv", "out.jsonl"):
            with self.subTest(output=out):
                path = os.path.join(outdir, out)
                self.assertOneErrorLine(featx("extract", *FAST, "--resume", "-o", path, photo("cat.bmp")),
                                        "--resume")
                self.assertEqual(os.listdir(outdir), [])
        proc = featx("extract", *FAST, "--resume", photo("cat.bmp"))  # stdout
        self.assertOneErrorLine(proc, "--resume")
        self.assertEqual(proc.stdout, "")

    def test_killed_twice_resumes_bit_identical(self):
        # ~600 inputs, corrupt ones early (committed before the first kill) and late.
        entries = []
        for i in range(600):
            if i == 7:
                entries.append((f"{i:04d}_trunc.jpg", trunc()))
            elif i == 450:
                entries.append((f"{i:04d}_noise.png", noise()))
            else:
                f = PHOTOS[i % len(PHOTOS)]
                entries.append((f"{i:04d}_{f}", photo(f)))
        d = link_dir("resume_photos", entries)
        ref_dir, run_dir = mkdir("resume_ref"), mkdir("resume_run")
        ref, out = os.path.join(ref_dir, "out.npy"), os.path.join(run_dir, "out.npy")
        names_part = out + ".names.txt.part"
        base = ["extract", "-m", TF2, "-o", out, d]

        t0 = time.monotonic()
        proc = featx("extract", "-m", TF2, "--batch", "4", "--threads", "1", "-o", ref, d)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertEqual(self.summary(proc), (598, 0, 2))
        ref_rows = np.load(ref)
        ref_names = lines_of(ref + ".names.txt")
        self.assertEqual(ref_rows.shape, (598, 1280))
        print(f"\nuninterrupted run: {time.monotonic() - t0:.1f} s")

        # First run, killed once 20 inputs are committed.
        run = subprocess.Popen([BIN, *base, "--batch", "4", "--threads", "1"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=clean_env())
        kill_when_committed(self, run, names_part, 20)
        for final in ("out.npy", "out.npy.names.txt", "out.npy.errors.txt"):
            self.assertFalse(os.path.exists(os.path.join(run_dir, final)), final + " after SIGKILL")
        self.assertEqual(part_files(run_dir), ["out.npy.errors.txt.part", "out.npy.job.part",
                                               "out.npy.names.txt.part", "out.npy.part"])
        committed = lines_of(names_part)
        self.assertGreaterEqual(len(committed), 20)
        self.assertEqual(committed, ref_names[:len(committed)])
        self.assertEqual(lines_of(out + ".errors.txt.part"), lines_of(ref + ".errors.txt")[:1])
        # The data file is a valid .npy at every moment: the committed rows, perhaps more.
        partial = np.load(out + ".part")
        self.assertGreaterEqual(partial.shape[0], len(committed))
        np.testing.assert_array_equal(partial[:len(committed)], ref_rows[:len(committed)])

        # Resumes of another job are refused with one line and leave the .part files alone.
        before = {f: read_bytes(os.path.join(run_dir, f)) for f in part_files(run_dir)}
        others = [("--pool max", ["extract", "-m", TF2, "--pool", "max", "-o", out, d]),
                  ("--l2", ["extract", "-m", TF2, "--l2", "-o", out, d]),
                  ("another model", ["extract", *FAST, "-o", out, d]),
                  ("other inputs", ["extract", "-m", TF2, "-o", out, d, photo("cat.bmp")]),
                  ("--shard", ["extract", "-m", TF2, "--shard", "0/2", "-o", out, d])]
        for what, args in others:
            with self.subTest(refused=what):
                proc = featx(*args, "--resume")
                self.assertOneErrorLine(proc, out)
                self.assertEqual({f: read_bytes(os.path.join(run_dir, f)) for f in part_files(run_dir)},
                                 before)
                self.assertFalse(os.path.exists(out))

        # Second run: resumed with another batch and thread count, killed again.
        run = subprocess.Popen([BIN, *base, "--resume", "--batch", "5", "--threads", "2"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=clean_env())
        kill_when_committed(self, run, names_part, len(committed) + 20)
        self.assertFalse(os.path.exists(out))
        committed2 = lines_of(names_part)
        self.assertEqual(committed2, ref_names[:len(committed2)])

        # Third run finishes.
        proc = featx(*base, "--resume", "--batch", "3", "--threads", "1", "--decoders", "0")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        done, skipped, failed = self.summary(proc)
        self.assertGreaterEqual(skipped, len(committed2) + 1)  # the names and the early error
        self.assertEqual(done + skipped + failed, 600)
        self.assertEqual(failed, 1)  # the late corrupt input; the early one was resumed
        self.assertEqual(proc.stderr.splitlines()[-1],
                         f"featx: error: 2 of 600 inputs failed (listed in {out}.errors.txt)")
        self.assertSameOutput(ref, out, errors=True)
        self.assertEqual(part_files(run_dir), [])
        print(f"kill, resume, kill, resume: {time.monotonic() - t0:.1f} s in all; the last resume skipped "
              f"{skipped}")


# --- 5. shards, GNU parallel, scheduler variables, merge -----------------------------------------

class ShardTest(Checks):
    @classmethod
    def setUpClass(cls):
        # 10 inputs in 4 blocks: [0,2) both fail (an empty part), [2,5), [5,7) one fails, [7,10).
        cls.inputs = [noise(), trunc(), photo("cat.bmp"), photo("pets.jpg"), photo("bird.bmp"),
                      photo("squat.bmp"), missing(), photo("parrot.jpg"), photo("grace_hopper.bmp"),
                      photo("kite_and_cold.jpg")]
        cls.list = write_list("shards.list", cls.inputs)
        cls.dir = mkdir("shards_out")
        cls.single = os.path.join(cls.dir, "single.npy")
        proc = featx("extract", *FAST, "-o", cls.single, "--list", cls.list)
        if proc.returncode != 1:
            raise AssertionError(f"the unsharded run: {proc.stderr}")
        cls.parts = []
        for k in range(4):
            part = os.path.join(cls.dir, f"part{k}.npy")
            proc = featx("extract", *FAST, "-q", "--shard", f"{k}/4", "-o", part, "--list", cls.list)
            if proc.returncode != (1 if k in (0, 2) else 0):
                raise AssertionError(f"shard {k}/4: status {proc.returncode}: {proc.stderr}")
            cls.parts.append(part)

    def merged(self, name, parts):
        out = os.path.join(self.dir, name)
        return out, featx("merge", "-o", out, *parts)

    def assertNoMergeOutput(self, name):
        self.assertEqual([f for f in os.listdir(self.dir) if f.startswith(name)], [])

    def test_the_single_run_and_the_parts(self):
        self.assertEqual(lines_of(self.single + ".names.txt"),
                         [x for x in self.inputs if x not in (noise(), trunc(), missing())])
        self.assertEqual([e.split("\t")[0] for e in lines_of(self.single + ".errors.txt")],
                         [noise(), trunc(), missing()])
        self.assertEqual(np.load(self.part(0)).shape, (0,))  # its inputs all failed
        self.assertEqual(lines_of(self.part(0) + ".names.txt"), [])
        self.assertFalse(os.path.exists(self.part(1) + ".errors.txt"))

    def part(self, k):
        return self.parts[k]

    def test_gnu_parallel_then_merge_in_any_order(self):
        if not shutil.which("parallel"):
            if os.environ.get("CI") == "true":
                self.fail("GNU parallel not found (scripts/debian-packages.txt lists it)")
            support._loud_skip("GNU parallel not found (apt-get install parallel)")
        d = mkdir("parallel_out")
        proc = subprocess.run(["parallel", "--will-cite", BIN, "extract", *FAST, "-q",
                               "--shard", "{}/4", "-o", os.path.join(d, "part{}.npy"), "--list", self.list,
                               ":::", "0", "1", "2", "3"],
                              capture_output=True, text=True, env=clean_env(), stdin=subprocess.DEVNULL,
                              timeout=600)
        self.assertEqual(proc.returncode, 2, f"two shards hold failed inputs: {proc.stderr}")
        for k in range(4):
            self.assertTrue(os.path.isfile(os.path.join(d, f"part{k}.npy.shard.txt")))
            self.assertSameBytes(os.path.join(d, f"part{k}.npy"), self.part(k))
        order = [2, 0, 3, 1]
        out = os.path.join(d, "merged.npy")
        proc = featx("merge", "-o", out, *[os.path.join(d, f"part{k}.npy") for k in order])
        self.assertOk(proc, "featx merge")
        self.assertSameOutput(self.single, out, errors=True)
        self.assertEqual(part_files(d), [])

    def test_parts_merged_in_order_or_not(self):
        for name, order in (("sorted.npy", [0, 1, 2, 3]), ("reversed.npy", [3, 2, 1, 0])):
            with self.subTest(order=order):
                out, proc = self.merged(name, [self.part(k) for k in order])
                self.assertOk(proc, "featx merge")
                self.assertSameOutput(self.single, out, errors=True)

    def test_slurm_array(self):
        cases = [("array 4-7, task 5", {"SLURM_ARRAY_TASK_ID": 5, "SLURM_ARRAY_TASK_MIN": 4,
                                        "SLURM_ARRAY_TASK_COUNT": 4}, 1),
                 ("array 0-3, task 3", {"SLURM_ARRAY_TASK_ID": 3, "SLURM_ARRAY_TASK_MIN": 0,
                                        "SLURM_ARRAY_TASK_COUNT": 4}, 3)]
        for what, env, k in cases:
            with self.subTest(what):
                out = os.path.join(self.dir, f"slurm{k}.npy")
                proc = featx("extract", *FAST, "-o", out, "--list", self.list, env=clean_env(**env))
                self.assertOk(proc)
                self.assertIn(f"shard {k}/4", [l for l in proc.stderr.splitlines() if SUMMARY.match(l)][0])
                self.assertSameOutput(self.part(k), out, errors=False)
                self.assertSameBytes(self.part(k) + ".shard.txt", out + ".shard.txt")
        # An array with a step (0-6:2 gives IDs 0, 2, 4, 6 and a count of 4): refused.
        proc = featx("extract", *FAST, "-o", os.path.join(self.dir, "step.npy"), "--list", self.list,
                     env=clean_env(SLURM_ARRAY_TASK_ID=6, SLURM_ARRAY_TASK_MIN=0, SLURM_ARRAY_TASK_COUNT=4))
        self.assertOneErrorLine(proc, "SLURM_ARRAY_TASK_ID")
        self.assertNoMergeOutput("step.npy")

    def test_kubernetes_indexed_job(self):
        out = os.path.join(self.dir, "k8s2.npy")
        proc = featx("extract", *FAST, "--shards", "4", "-o", out, "--list", self.list,
                     env=clean_env(JOB_COMPLETION_INDEX=2))
        self.assertEqual(proc.returncode, 1, proc.stderr)  # its block holds the missing path
        self.assertIn("shard 2/4", [l for l in proc.stderr.splitlines() if SUMMARY.match(l)][0])
        self.assertSameOutput(self.part(2), out, errors=True)
        self.assertSameBytes(self.part(2) + ".shard.txt", out + ".shard.txt")
        proc = featx("extract", *FAST, "-o", os.path.join(self.dir, "k8s_n.npy"), "--list", self.list,
                     env=clean_env(JOB_COMPLETION_INDEX=2))
        self.assertOneErrorLine(proc, "--shards")
        self.assertNoMergeOutput("k8s_n.npy")

    def test_merge_refuses_incomplete_or_foreign_parts(self):
        other_list = write_list("shards_other.list", self.inputs[:-1])
        other = os.path.join(self.dir, "other3.npy")
        proc = featx("extract", *FAST, "--shard", "3/4", "-o", other, "--list", other_list)
        self.assertEqual(proc.returncode, 1, proc.stderr)  # its block [6, 9) holds the missing path
        self.assertTrue(os.path.isfile(other + ".shard.txt"))
        unsharded = self.single
        cases = [("missing shard", [self.part(0), self.part(1), self.part(3)], "missing"),
                 ("missing last shard", [self.part(2), self.part(0), self.part(1)], "missing"),
                 ("duplicate", [self.part(0), self.part(1), self.part(1), self.part(2), self.part(3)], "twice"),
                 ("another input list", [self.part(0), self.part(1), self.part(2), other], ""),
                 ("not a shard", [self.part(0), self.part(1), self.part(2), unsharded], "")]
        for i, (what, parts, word) in enumerate(cases):
            with self.subTest(what):
                name = f"refused{i}.npy"
                out, proc = self.merged(name, parts)
                line = self.assertOneErrorLine(proc, word)
                self.assertTrue(any(x in line for x in parts), f"names none of the parts: {line}")
                self.assertNoMergeOutput(name)

    # The contract says parts "of different runs" are refused; the shard record holds only the
    # input list, so parts of another model or other options on the same list are not told apart.
    def test_merge_refuses_parts_of_other_options(self):
        for what, flags in (("--l2", [*FAST, "--l2"]), ("--pool max", [*FAST, "--pool", "max"]),
                            ("another model", ["-m", TF2, "--threads", "1"])):
            with self.subTest(what):
                tag = what.strip("-").replace(" ", "_")
                odd = os.path.join(self.dir, f"odd_{tag}1.npy")
                args = ["extract", *flags, "-q", "--shard", "1/4", "-o", odd, "--list", self.list]
                self.assertOk(featx(*args))
                name = f"mixed_{tag}.npy"
                out, proc = self.merged(name, [self.part(0), odd, self.part(2), self.part(3)])
                self.assertOneErrorLine(proc)
                self.assertNoMergeOutput(name)

    # A shard whose block is one input that fails must still give its part (with the error), or the
    # unsharded output can never be merged back.
    def test_shard_of_one_failing_input(self):
        inputs = [photo("cat.bmp"), trunc(), photo("pets.jpg"), photo("bird.bmp")]
        listed = write_list("shards_one.list", inputs)
        single = os.path.join(self.dir, "one_single.npy")
        self.assertEqual(featx("extract", *FAST, "-o", single, "--list", listed).returncode, 1)
        parts = []
        for k in range(4):
            part = os.path.join(self.dir, f"one_part{k}.npy")
            proc = featx("extract", *FAST, "-q", "--shard", f"{k}/4", "-o", part, "--list", listed)
            self.assertEqual(proc.returncode, 1 if k == 1 else 0, proc.stderr)
            self.assertTrue(os.path.isfile(part + ".shard.txt"), f"shard {k}/4 wrote no {part}.shard.txt")
            parts.append(part)
        out, proc = self.merged("one_merged.npy", parts)
        self.assertOk(proc, "featx merge")
        self.assertSameOutput(single, out, errors=True)

    # A merge replaces an earlier output of the same name, as extract does.
    def test_merge_replaces_an_earlier_output(self):
        out, proc = self.merged("again.npy", self.parts)
        self.assertOk(proc, "featx merge")
        self.assertTrue(os.path.isfile(out + ".errors.txt"))
        clean = write_list("shards_clean.list", [photo(f) for f in PHOTOS])
        clean_parts = []
        for k in range(2):
            part = os.path.join(self.dir, f"clean_part{k}.npy")
            self.assertOk(featx("extract", *FAST, "-q", "--shard", f"{k}/2", "-o", part, "--list", clean))
            clean_parts.append(part)
        self.assertOk(featx("merge", "-o", out, *clean_parts), "featx merge")
        self.assertEqual(lines_of(out + ".names.txt"), [photo(f) for f in PHOTOS])
        self.assertFalse(os.path.exists(out + ".errors.txt"), "errors file of the earlier merge left behind")


# --- 6. --l2 -------------------------------------------------------------------------------------

class L2Test(Checks):
    def test_rows_have_unit_norm(self):
        outdir = mkdir("l2_out")
        for pool, shape in (("avg", (7, 1280)), ("none", (7, 3, 3, 1280))):
            with self.subTest(pool=pool):
                plain, l2 = os.path.join(outdir, f"plain_{pool}.npy"), os.path.join(outdir, f"l2_{pool}.npy")
                self.assertOk(featx("extract", *FAST, "--pool", pool, "-o", plain, p("photos")))
                self.assertOk(featx("extract", *FAST, "--pool", pool, "--l2", "-o", l2, p("photos")))
                a, b = np.load(plain), np.load(l2)
                self.assertEqual(b.shape, shape)
                self.assertEqual(b.dtype, np.float32)
                self.assertSameBytes(plain + ".names.txt", l2 + ".names.txt")
                flat_a = a.reshape(len(a), -1).astype(np.float64)
                flat_b = b.reshape(len(b), -1).astype(np.float64)
                norms = np.linalg.norm(flat_b, axis=1)
                self.assertLess(float(np.abs(norms - 1.0).max()), 1e-6, norms)
                self.assertGreater(float(np.abs(np.linalg.norm(flat_a, axis=1) - 1.0).max()), 1e-3,
                                   "the plain rows were already unit: the check would prove nothing")
                ref = flat_a / np.linalg.norm(flat_a, axis=1, keepdims=True)
                self.assertLess(float(np.abs(flat_b - ref).max()), 1e-7)


# --- 7. the progress bar on a terminal only ------------------------------------------------------

def run_on_pty(args):
    """featx with stderr on a pseudo-terminal; -> (exit status, what it wrote there)."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen([BIN, *map(str, args)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=slave, env=clean_env())
    finally:
        os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    proc.wait(timeout=600)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


class ProgressTest(Checks):
    @classmethod
    def setUpClass(cls):
        entries = [(f"{i:03d}_{f}", photo(f)) for i, f in enumerate(["cat.bmp", "bird.bmp", "pets.jpg"] * 10)]
        cls.clean = link_dir("progress", entries)
        cls.with_bad = write_list("progress.list", [os.path.join(cls.clean, e[0]) for e in entries[:10]] + [trunc()]
                                  + [os.path.join(cls.clean, e[0]) for e in entries[10:]])
        cls.dir = mkdir("progress_out")

    def test_bar_on_a_terminal(self):
        rc, text = run_on_pty(["extract", *FAST, "-o", os.path.join(self.dir, "tty.npy"),
                               "--list", self.with_bad])
        self.assertEqual(rc, 1, text)
        for needle in ("\r[", "images/s", "ETA", "31/31"):
            self.assertIn(needle, text)
        # Each message starts a line of its own: the bar is cleared (or ended) first.
        for m in re.finditer(r"featx: ", text):
            before = text[:m.start()]
            self.assertTrue(before == "" or before.endswith("\n") or before.endswith("\r\x1b[K"),
                            repr(text[max(0, m.start() - 40):m.start() + 40]))
        self.assertTrue(re.search(r"featx: 30 done, 0 skipped \(resumed\), 1 failed, [\d.]+ images/s", text), text)

    def test_no_bar_in_a_pipe(self):
        proc = featx("extract", *FAST, "-o", os.path.join(self.dir, "pipe.npy"), self.clean)
        self.assertOk(proc)
        for needle in ("\r", "[", "ETA", "\x1b"):
            self.assertNotIn(needle, proc.stderr)
        lines = proc.stderr.splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)  # the summary alone holds "images/s"
        self.assertTrue(SUMMARY.match(lines[0]), lines[0])
        self.assertEqual(proc.stderr.count("images/s"), 1)

    def test_quiet(self):
        rc, text = run_on_pty(["extract", *FAST, "-q", "-o", os.path.join(self.dir, "quiet_tty.npy"),
                               self.clean])
        self.assertEqual(rc, 0, text)
        self.assertEqual(text, "", "--quiet on a terminal: neither bar nor summary")
        out = os.path.join(self.dir, "quiet.npy")
        proc = featx("extract", *FAST, "--quiet", "-o", out, "--list", self.with_bad)
        self.assertEqual(proc.returncode, 1)
        lines = proc.stderr.splitlines()
        self.assertEqual(len(lines), 2, proc.stderr)  # the failed input's line and the count, no summary
        self.assertTrue(lines[0].startswith(f"featx: error: {trunc()}: "), lines[0])
        self.assertEqual(lines[1], f"featx: error: 1 of 31 inputs failed (listed in {out}.errors.txt)")
        self.assertEqual(np.load(out).shape, (30, 1280))


if __name__ == "__main__":
    unittest.main()
