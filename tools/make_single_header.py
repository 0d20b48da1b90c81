#!/usr/bin/python3
"""Generates single_include/featx/featx.hpp: include/featx/featx.hpp with every
header it reaches inlined once, so a user needs nothing but this one file, the
compiler and its standard library.

Inlined, each once, where it is first included (which is dependency order):
  - every quoted "featx/..." header (#pragma once becomes an include guard);
  - the FlatBuffers runtime headers "flatbuffers/..." that flatbuffers.h reaches
    (from --flatbuffers-dir; their include guards kept, so a user's own copy of
    the same version included before or after is skipped), preceded by the
    Apache-2.0 licence;
  - stb_image.h (from --stb-dir) in the region of featx/detail/stb_image.hpp
    between the "featx-single-header: inline" and "end" markers, verbatim (its
    licence is at its end).
System headers (<vector>, <sys/mman.h>, <omp.h>, <immintrin.h>, <jpeglib.h>
under FEATX_WITH_LIBJPEG, ...) stay #includes.

A header first included under a condition (#if...) that need not hold at a
later #include of it is inlined again there (its guard skips the second copy
when the first was compiled), as the x86 and the NEON kernels both include
conv_tiled.hpp; the script says which.

The output depends only on the input files (no dates or paths), so CI
regenerates it and diffs (tests/single_header_test.sh).

Usage: /usr/bin/python3 tools/make_single_header.py [--out FILE]
           [--flatbuffers-dir /usr/include] [--stb-dir /usr/include]
"""
import argparse
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT_HEADER = "featx/featx.hpp"
DEFAULT_OUT = os.path.join(REPO, "single_include", "featx", "featx.hpp")
APACHE_LICENSE = "/usr/share/common-licenses/Apache-2.0"

DIRECTIVE = re.compile(r"^\s*#\s*(\w+)\s*(.*?)\s*$", re.DOTALL)
QUOTED_INCLUDE = re.compile(r'^"([^"]+)"')
MARKER_BEGIN = re.compile(r"^\s*//\s*featx-single-header:\s*inline\s+(\S+)\s*$")
MARKER_END = re.compile(r"^\s*//\s*featx-single-header:\s*end\s*$")


class Error(Exception):
    pass


def read_text(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise Error(f"{path}: cannot read ({e.strerror})")
    if not text.endswith("\n"):
        text += "\n"
    return text


def logical_lines(text):
    """Source lines with backslash continuations joined: (first line number, text)."""
    physical = text.split("\n")[:-1]
    i = 0
    while i < len(physical):
        start, line = i + 1, physical[i]
        while line.endswith("\\") and i + 1 < len(physical):
            i += 1
            line += "\n" + physical[i]
        yield start, line
        i += 1


def scan_comments(line, in_block):
    """Whether a block comment is open after `line`, given whether one was before.
    Good enough for headers: ignores comment tokens inside string literals."""
    i = 0
    while i < len(line):
        if in_block:
            end = line.find("*/", i)
            if end < 0:
                return True
            in_block, i = False, end + 2
        else:
            block, slashes = line.find("/*", i), line.find("//", i)
            if block < 0 or (0 <= slashes < block):
                return False
            in_block, i = True, block + 2
    return in_block


def include_guard(lines):
    """(index of the #ifndef, index of its #endif) when the whole file is one
    include guard, else None. Directives in block comments are not seen here:
    a guard's #ifndef comes after the licence comment, not inside it."""
    directives = []
    in_block = False
    for index, (_, line) in enumerate(lines):
        if not in_block:
            m = DIRECTIVE.match(line)
            if m:
                directives.append((index, m.group(1), m.group(2)))
        in_block = scan_comments(line, in_block)
    if len(directives) < 3:
        return None
    (first, kind, name), (_, kind2, name2) = directives[0], directives[1]
    last, kind_last, _ = directives[-1]
    if kind != "ifndef" or kind2 != "define" or name2.split()[0] != name or kind_last != "endif":
        return None
    depth = 0  # the guard's #endif must close the #ifndef, not a nested #if
    for index, kind, _ in directives:
        if kind in ("if", "ifdef", "ifndef"):
            depth += 1
        elif kind == "endif":
            depth -= 1
            if depth == 0 and index != last:
                return None
    return first, last


class Amalgamation:
    def __init__(self, flatbuffers_dir, stb_dir):
        self.roots = {
            "featx": os.path.join(REPO, "include"),
            "flatbuffers": flatbuffers_dir,
        }
        self.vendored = {"stb/stb_image.h": os.path.join(stb_dir, "stb", "stb_image.h")}
        self.out = []
        self.stack = []          # ids of the open #if branches along the output
        self.next_branch = 0
        self.inlined = {}        # header -> [(branch stack when inlined, site)], one per copy
        self.order = []          # headers in the order they were first inlined
        self.duplicates = []     # (header, first site, site of a second copy)
        self.licensed = set()    # libraries whose licence block is out already
        self.markers_used = set()
        self.guard_open = False  # the file being emitted had #pragma once

    def branch(self):
        self.next_branch += 1
        return self.next_branch

    def resolve(self, name):
        library = name.split("/", 1)[0]
        if library not in self.roots or "/" not in name:
            return None
        return os.path.join(self.roots[library], name)

    def include(self, name, site):
        """Inlines `name` at `site` unless a copy is already in force there."""
        copies = self.inlined.setdefault(name, [])
        if any(tuple(self.stack[: len(stack)]) == stack for stack, _ in copies):
            return  # a copy inlined under conditions that hold here too
        path = self.resolve(name)
        if not os.path.isfile(path):
            raise Error(f"{site}: {name} not found (looked for {path})")
        text = read_text(path)
        copies.append((tuple(self.stack), site))
        library = name.split("/", 1)[0]
        if library == "flatbuffers" and library not in self.licensed:
            self.licensed.add(library)
            self.out.extend(flatbuffers_licence_block(self.roots["flatbuffers"]))
        if len(copies) > 1:
            # A copy exists, but under a condition that need not hold here (x86
            # kernels, then NEON ones, both include conv_tiled.hpp): a second
            # copy, skipped by its guard when the first one was compiled.
            self.duplicates.append((name, copies[0][1], site))
        self.out.append(f"// ---- begin {name} ----")
        self.emit(name, text)
        self.out.append(f"// ---- end {name} ----")
        if len(copies) == 1:
            self.order.append(name)

    def inline_vendored(self, name, site):
        if name not in self.vendored:
            raise Error(f"{site}: the marker names {name}; known: {', '.join(sorted(self.vendored))}")
        if name in self.markers_used:
            raise Error(f"{site}: {name} is already inlined")
        self.markers_used.add(name)
        text = read_text(self.vendored[name])
        first = text.split("\n", 1)[0]
        self.out.append(f"// ---- begin {name} (verbatim; its licence is at its end) ----")
        self.out.append(f"// {first.strip()[2:].strip() if first.startswith('/*') else name}")
        self.out.extend(text.split("\n")[:-1])
        self.out.append(f"// ---- end {name} ----")
        self.order.append(name)

    def emit(self, name, text):
        lines = list(logical_lines(text))
        guard = include_guard(lines)
        outer_guard_open, self.guard_open = self.guard_open, False
        in_block = False
        skipping_to_end = None  # site of an open featx-single-header marker
        for index, (number, line) in enumerate(lines):
            site = f"{name}:{number}"
            was_in_block, in_block = in_block, scan_comments(line, in_block)
            if skipping_to_end:
                if MARKER_END.match(line):
                    skipping_to_end = None
                continue
            if not was_in_block:
                marker = MARKER_BEGIN.match(line)
                if marker:
                    self.inline_vendored(marker.group(1), site)
                    skipping_to_end = site
                    continue
                m = DIRECTIVE.match(line)
                if m and self.directive(name, m.group(1), m.group(2), site,
                                        is_guard=guard is not None and index in guard):
                    continue
            self.out.append(line)
        if skipping_to_end:
            raise Error(f"{skipping_to_end}: featx-single-header marker without its end")
        if in_block:
            raise Error(f"{name}: ends inside a block comment")
        if self.guard_open:
            self.out.append(f"#endif  // {pragma_once_guard(name)}")
        self.guard_open = outer_guard_open

    def directive(self, name, kind, rest, site, is_guard):
        """Handles one directive; True when it was consumed (not copied)."""
        if kind == "pragma" and rest == "once":
            # An include guard in its place: a header can be inlined twice.
            macro = pragma_once_guard(name)
            self.out.extend([f"#ifndef {macro}", f"#define {macro}"])
            self.guard_open = True
            return True
        if kind == "include":
            m = QUOTED_INCLUDE.match(rest)
            if m and self.resolve(m.group(1)):
                self.include(m.group(1), site)
                return True
            return False
        if is_guard:  # a whole-file include guard: copied, but no condition on what it holds
            return False
        if kind in ("if", "ifdef", "ifndef"):
            self.stack.append(self.branch())
        elif kind in ("elif", "else"):
            if not self.stack:
                raise Error(f"{site}: #{kind} without #if")
            self.stack[-1] = self.branch()
        elif kind == "endif":
            if not self.stack:
                raise Error(f"{site}: #endif without #if")
            self.stack.pop()
        return False


def pragma_once_guard(name):
    return "FEATX_SINGLE_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper() + "_"


def flatbuffers_version(flatbuffers_dir):
    text = read_text(os.path.join(flatbuffers_dir, "flatbuffers", "base.h"))
    parts = []
    for part in ("MAJOR", "MINOR", "REVISION"):
        m = re.search(rf"#define FLATBUFFERS_VERSION_{part} (\d+)", text)
        if not m:
            raise Error(f"{flatbuffers_dir}/flatbuffers/base.h: no FLATBUFFERS_VERSION_{part}")
        parts.append(m.group(1))
    return ".".join(parts)


def flatbuffers_licence_block(flatbuffers_dir):
    licence = read_text(APACHE_LICENSE)
    if "*/" in licence:
        raise Error(f"{APACHE_LICENSE}: contains */, cannot go in a comment")
    return ([
        "/*",
        f" * The FlatBuffers {flatbuffers_version(flatbuffers_dir)} runtime headers follow: the files",
        " * flatbuffers/flatbuffers.h reaches (not util.h, reflection.h, minireflect.h,",
        " * flexbuffers.h or idl.h, which featx does not use). Copyright 2014-2021 Google",
        " * Inc., licensed under the Apache License, Version 2.0, whose text follows. Each",
        " * file is verbatim but for its #include lines of headers inlined here, which",
        " * are removed.",
    ] + [(" * " + line).rstrip() for line in licence.rstrip("\n").split("\n")] + [" */"])


def featx_version():
    text = read_text(os.path.join(REPO, "CMakeLists.txt"))
    m = re.search(r"project\(featx VERSION ([0-9.]+)", text)
    if not m:
        raise Error(f"{REPO}/CMakeLists.txt: no project(featx VERSION ...)")
    return m.group(1)


def generate(flatbuffers_dir, stb_dir):
    amalgamation = Amalgamation(flatbuffers_dir, stb_dir)
    amalgamation.include(ROOT_HEADER, "(root)")
    if "stb/stb_image.h" not in amalgamation.markers_used:
        raise Error("include/featx/detail/stb_image.hpp: no featx-single-header marker for "
                    "stb/stb_image.h: stb_image would stay an outside include")
    featx_headers = [h for h in amalgamation.order if h.startswith("featx/")]
    flatbuffers_headers = [h for h in amalgamation.order if h.startswith("flatbuffers/")]
    preamble = [
        f"// featx {featx_version()} single header: TensorFlow Hub MobileNetV2 feature vectors in",
        "// plain C++17. Generated by tools/make_single_header.py from include/featx/featx.hpp:",
        "// do not edit; change include/ and regenerate.",
        "//",
        "//   #include \"featx.hpp\"   // nothing else: no FlatBuffers, no stb_image to install",
        "//",
        "// Like stb's libraries, one file you copy; unlike them there is no",
        "// implementation macro: no FEATX_IMPLEMENTATION to define in one .cpp. Every",
        "// featx function is inline, a template or defined in its class, FlatBuffers'",
        "// runtime is header-only, and stb_image is compiled static into each",
        "// translation unit, so any number of TUs include this file and link",
        "// together. The configuration macros (FEATX_NO_IMAGE, FEATX_NO_OPENMP,",
        "// FEATX_NO_SIMD, FEATX_NO_EXCEPTIONS, FEATX_WITH_LIBJPEG, the allocator hooks",
        "// FEATX_ALIGNED_ALLOC / FEATX_FREE / FEATX_MALLOC / FEATX_REALLOC, ...) are",
        "// documented in the first section below; define them before this include,",
        "// the same in every TU. Outside headers: only the compiler's and libc's",
        "// (<vector>, <sys/mman.h>, <omp.h> under -fopenmp, <immintrin.h> or",
        "// <arm_neon.h>), plus <jpeglib.h> with FEATX_WITH_LIBJPEG (opt-in; link -ljpeg).",
        "// Do not include it and headers of include/featx/ in one translation unit.",
        "//",
        f"// Inlined: {len(featx_headers)} featx headers, {len(flatbuffers_headers)} FlatBuffers "
        "runtime headers (Apache-2.0,",
        "// licence text before them) and stb_image.h (public domain or MIT, licence",
        "// text at its end).",
        "#pragma once",
        "#ifndef FEATX_SINGLE_HEADER_HPP_",
        "#define FEATX_SINGLE_HEADER_HPP_",
        "#define FEATX_SINGLE_HEADER 1",
        "",
    ]
    text = "\n".join(preamble + amalgamation.out + ["", "#endif  // FEATX_SINGLE_HEADER_HPP_", ""])
    return text, amalgamation


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=DEFAULT_OUT, help="default: single_include/featx/featx.hpp")
    p.add_argument("--flatbuffers-dir", default="/usr/include",
                   help="directory holding flatbuffers/flatbuffers.h (2.0.8)")
    p.add_argument("--stb-dir", default="/usr/include", help="directory holding stb/stb_image.h")
    args = p.parse_args()
    try:
        text, amalgamation = generate(args.flatbuffers_dir, args.stb_dir)
    except Error as e:
        print(f"make_single_header: {e}", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"{args.out}: {len(text.encode())} bytes, {text.count(chr(10))} lines, "
          f"{len(amalgamation.order)} headers inlined")
    if amalgamation.duplicates:
        print("inlined twice, the first copy under conditions that need not hold at the second:")
    for name, first, again in amalgamation.duplicates:
        where = f" (from {first}, again from {again})" if first != again else " (included by the above)"
        print(f"  {name}{where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
