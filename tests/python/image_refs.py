"""References for featx's image path that are not featx, and the plumbing the
image checks share (check_*.py, run by ctest with the environment below).

- djpeg / cjpeg (libjpeg-turbo-progs): TF's JPEG decode is `djpeg -dct fast`
  (fancy upsampling is djpeg's default); cjpeg makes test JPEGs;
- PIL: what keras.utils.load_img decodes and resizes;
- numpy float32 emulations of TF's ResizeBilinear (half-pixel centres) and
  ScaleAndTranslate (triangle kernel, antialias), written from the kernels'
  source (resize_bilinear_op.cc, scale_and_translate_op.cc), operation by
  operation in float32, so they agree with TF bit for bit where TF's build
  does not fuse multiply-adds.

Environment (set by tests/CMakeLists.txt): FEATX_IMAGE_DUMP (the
featx_image_dump tool), FEATX_CLI (build/featx), FEATX_TEST_MODELS_DIR,
FEATX_IMAGE_WORK (scratch folder in the build tree), FEATX_SHARED_DIR.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import tempfile

import numpy as np
from PIL import Image

import support

DUMP = os.environ.get("FEATX_IMAGE_DUMP", "")
CLI = os.environ.get("FEATX_CLI", "")
MODELS = os.environ.get("FEATX_TEST_MODELS_DIR", "")
F32 = np.float32


def work_dir(name: str) -> str:
    root = os.environ.get("FEATX_IMAGE_WORK") or os.path.join(tempfile.gettempdir(), "featx_image_checks")
    path = os.path.join(root, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def require_tools(*names):
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        support._loud_skip(f"{' and '.join(missing)} not found (Debian: libjpeg-turbo-progs)")


def require_dump():
    if not DUMP or not os.path.isfile(DUMP):
        support._loud_skip("FEATX_IMAGE_DUMP is not set to the featx_image_dump tool (run through ctest)")


def require_images():
    if not os.path.isdir(support.IMAGES):
        support._loud_skip(f"shared images not found at {support.IMAGES} (set FEATX_SHARED_DIR)")


# --- making and reading files -----------------------------------------------

def read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def write_bytes(path: str, data):
    with open(path, "wb") as f:
        f.write(data)


def save_ppm(rgb: np.ndarray, path: str):
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").save(path)


def cjpeg(ppm: str, out: str, *args):
    subprocess.run(["cjpeg", *args, "-outfile", out, ppm], check=True)


def djpeg(jpeg: str, dct: str = "fast", *args) -> np.ndarray:
    """djpeg's 8-bit output as (H, W, 3) uint8; greyscale replicated like libjpeg's JCS_RGB."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.pnm")
        subprocess.run(["djpeg", "-dct", dct, *args, "-pnm", "-outfile", out, jpeg], check=True)
        with Image.open(out) as im:
            a = np.asarray(im)
    return np.repeat(a[:, :, None], 3, axis=2) if a.ndim == 2 else a


def turbojpeg_cmyk(path: str) -> np.ndarray:
    """Raw CMYK samples (JDCT_IFAST, fancy upsampling) through TurboJPEG's C API."""
    name = ctypes.util.find_library("turbojpeg") or "libturbojpeg.so.0"
    try:
        tj = ctypes.CDLL(name)
    except OSError:
        support._loud_skip("libturbojpeg not found (Debian: libturbojpeg0)")
    tj.tjInitDecompress.restype = ctypes.c_void_p
    tj.tjDecompressHeader3.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong] + [
        ctypes.POINTER(ctypes.c_int)] * 4
    tj.tjDecompress2.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p,
                                 ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    tj.tjDestroy.argtypes = [ctypes.c_void_p]
    data = read_bytes(path)
    h = tj.tjInitDecompress()
    w, ht, sub, cs = (ctypes.c_int() for _ in range(4))
    assert tj.tjDecompressHeader3(h, data, len(data), ctypes.byref(w), ctypes.byref(ht), ctypes.byref(sub),
                                  ctypes.byref(cs)) == 0
    out = np.zeros((ht.value, w.value, 4), np.uint8)
    TJPF_CMYK, TJFLAG_FASTDCT = 11, 2048
    assert tj.tjDecompress2(h, data, len(data), out.ctypes.data, w.value, 0, ht.value, TJPF_CMYK,
                            TJFLAG_FASTDCT) == 0
    tj.tjDestroy(h)
    return out


def has_adobe_marker(path: str) -> bool:
    data = read_bytes(path)
    at = data.find(b"Adobe")
    return at >= 4 and data[at - 4:at - 2] == b"\xff\xee"


def tf_cmyk_decode(path: str) -> np.ndarray:
    """TF's decode of a CMYK JPEG: raw IFAST CMYK, then jpeg_mem.cc's integer formula."""
    raw = turbojpeg_cmyk(path).astype(np.int64)
    c, k = raw[..., :3], raw[..., 3:]
    rgb = (k * c) // 255 if has_adobe_marker(path) else ((255 - k) * (255 - c)) // 255
    return rgb.astype(np.uint8)


def tf_unit(u8: np.ndarray) -> np.ndarray:
    """tf.image.convert_image_dtype(uint8 -> float32): x * float32(1/255)."""
    return u8.astype(F32) * F32(1.0 / 255.0)


def keras_unit(u8: np.ndarray) -> np.ndarray:
    """img_to_array(load_img(...)) / 255.0"""
    return u8.astype(F32) / F32(255.0)


def featx_dump(path: str, *args) -> tuple:
    """(float32 array, decoder name) from featx_image_dump."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.npy")
        proc = subprocess.run([DUMP, *args, path, out], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip())
        return np.load(out), proc.stdout.strip()


def featx_dump_error(path: str, *args) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as tmp:
        return subprocess.run([DUMP, *args, path, os.path.join(tmp, "out.npy")], capture_output=True, text=True)


def shared_photo(name: str) -> np.ndarray:
    with Image.open(os.path.join(support.IMAGES, name)) as im:
        return np.asarray(im.convert("RGB"))


# --- TF's resize kernels in float32 -----------------------------------------

def tf_resize_bilinear(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """ResizeBilinear(half_pixel_centers=True) on float32 HWC."""
    img = np.asarray(img, dtype=F32)

    def axis(out_size, in_size):
        scale = F32(in_size) / F32(out_size)
        src = (np.arange(out_size, dtype=F32) + F32(0.5)) * scale - F32(0.5)
        floor = np.floor(src)
        lower = np.maximum(floor, 0).astype(np.int64)
        upper = np.minimum(np.ceil(src), in_size - 1).astype(np.int64)
        return lower, upper, (src - floor).astype(F32)

    y0, y1, yl = axis(out_h, img.shape[0])
    x0, x1, xl = axis(out_w, img.shape[1])
    xl = xl[None, :, None]
    tl, tr = img[y0][:, x0], img[y0][:, x1]
    bl, br = img[y1][:, x0], img[y1][:, x1]
    top = tl + (tr - tl) * xl
    bottom = bl + (br - bl) * xl
    return (top + (bottom - top) * yl[:, None, None]).astype(F32)


def tf_triangle_spans(out_size: int, in_size: int, scale: np.float32):
    """ComputeSpansCore for the triangle kernel, antialias on, translation 0."""
    inv_scale = F32(1.0 / float(scale))
    kernel_scale = max(inv_scale, F32(1.0))
    span = min(2 * int(np.ceil(kernel_scale)) + 1, in_size)
    starts = np.zeros(out_size, np.int64)
    weights = np.zeros((out_size, span), F32)
    one_over_kernel_scale = F32(1.0) / kernel_scale
    for x in range(out_size):
        sample = (F32(x) + F32(0.5)) * inv_scale + (-inv_scale * F32(0.0))
        if sample < 0 or sample > in_size:
            continue
        start = int(np.ceil(sample - kernel_scale - F32(0.5)))
        end = int(np.floor(sample + kernel_scale - F32(0.5)))
        start = min(max(start, 0), in_size - 1)
        end = min(max(end, 0), in_size - 1) + 1
        ws, total = [], F32(0.0)
        for source in range(start, end):
            pos = F32(source) + F32(0.5) - sample
            t = abs(pos * one_over_kernel_scale)
            w = F32(1.0) - t if t < F32(1.0) else F32(0.0)
            total = F32(total + w)
            ws.append(F32(w))
        if abs(total) >= F32(1000.0) * np.finfo(F32).tiny:
            inv_total = F32(1.0) / total
            weights[x, :len(ws)] = [F32(w * inv_total) for w in ws]
        starts[x] = start
    return starts, weights


def tf_resize_antialias(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """tf.image.resize(antialias=True): ScaleAndTranslate, rows then columns."""
    img = np.asarray(img, dtype=F32)
    in_h, in_w = img.shape[:2]
    rs, rw = tf_triangle_spans(out_h, in_h, F32(out_h) / F32(in_h))
    cs, cw = tf_triangle_spans(out_w, in_w, F32(out_w) / F32(in_w))
    mid = np.zeros((out_h, in_w, 3), F32)
    for k in range(rw.shape[1]):  # span order, each output row its own sum
        rows = np.nonzero(rs + k < in_h)[0]
        mid[rows] += rw[rows, k][:, None, None] * img[rs[rows] + k]
    out = np.zeros((out_h, out_w, 3), F32)
    for k in range(cw.shape[1]):
        cols = np.nonzero(cs + k < in_w)[0]
        out[:, cols] += cw[cols, k][None, :, None] * mid[:, cs[cols] + k]
    return out


def tf_central_crop(img: np.ndarray, fraction: float) -> np.ndarray:
    if fraction == 1.0:
        return img
    h, w = img.shape[:2]
    top, left = int((h - h * fraction) / 2), int((w - w * fraction) / 2)
    return img[top:h - top, left:w - left]


def keras_load_img(path: str, height: int, width: int) -> np.ndarray:
    """keras.utils.load_img(path, target_size=(h, w)) -> img_to_array / 255."""
    with Image.open(path) as im:
        if im.mode != "RGB":
            im = im.convert("RGB")
        if im.size != (width, height):
            im = im.resize((width, height), Image.NEAREST)
        return keras_unit(np.asarray(im))
