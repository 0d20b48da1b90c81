"""CRC-32C (Castagnoli): the checksum of a .featx payload (and of checkpoint blocks).

Reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF, so
crc32c(b"123456789") == 0xE3069283 (the catalogue check value).

`crc32c_bytewise` is the plain table-driven definition. Payloads are tens of
megabytes, too slow for a Python loop, so `crc32c` runs many equal chunks in
parallel as numpy lanes and joins their CRCs: the CRC register update is linear
over GF(2), so crc(A || B) = shift(crc(A), len(B)) ^ crc(B) for raw registers.
"""

from __future__ import annotations

import numpy as np

POLY = 0x82F63B78
CHECK_VALUE = 0xE3069283


def _make_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ POLY if crc & 1 else crc >> 1
        table[byte] = crc
    return table


TABLE = _make_table()
_TABLE_LIST = [int(v) for v in TABLE]

# Parallel path: chunks of this many bytes each become one numpy lane.
_CHUNK = 4096
_PARALLEL_MIN = 16 * _CHUNK
_shift_tables = None  # per-byte tables of the "advance _CHUNK zero bytes" operator


def _update_bytewise(reg: int, data) -> int:
    """Raw register update (no initial or final inversion)."""
    table = _TABLE_LIST
    for byte in data:
        reg = table[(reg ^ byte) & 0xFF] ^ (reg >> 8)
    return reg


def crc32c_bytewise(data: bytes) -> int:
    return _update_bytewise(0xFFFFFFFF, bytes(data)) ^ 0xFFFFFFFF


def _update_lanes(reg: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Advance every lane's register through its column of bytes ([steps, lanes])."""
    for row in columns:
        reg = TABLE[(reg ^ row) & 0xFF] ^ (reg >> 8)
    return reg


def _shift_operator():
    """Tables T[k][b] with advance(v) = XOR_k T[k][byte k of v], advance = _CHUNK zero bytes."""
    global _shift_tables
    if _shift_tables is None:
        basis = np.array([1 << i for i in range(32)], dtype=np.uint32)
        zeros = np.zeros((_CHUNK, 32), dtype=np.uint32)
        images = [int(v) for v in _update_lanes(basis, zeros)]
        tables = []
        for k in range(4):
            t = [0] * 256
            for b in range(256):
                acc = 0
                for bit in range(8):
                    if b >> bit & 1:
                        acc ^= images[8 * k + bit]
                t[b] = acc
            tables.append(t)
        _shift_tables = tables
    return _shift_tables


def crc32c(data) -> int:
    """CRC-32C of `data` (bytes, bytearray, memoryview or a uint8 numpy array)."""
    buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    if buf.size < _PARALLEL_MIN:
        return crc32c_bytewise(buf.tobytes())
    lanes = buf.size // _CHUNK
    body = buf[: lanes * _CHUNK].reshape(lanes, _CHUNK).T.astype(np.uint32)
    partial = _update_lanes(np.zeros(lanes, dtype=np.uint32), body)
    t0, t1, t2, t3 = _shift_operator()
    reg = 0xFFFFFFFF
    for p in partial.tolist():
        reg = t0[reg & 0xFF] ^ t1[reg >> 8 & 0xFF] ^ t2[reg >> 16 & 0xFF] ^ t3[reg >> 24] ^ p
    reg = _update_bytewise(reg, buf[lanes * _CHUNK:].tobytes())
    return reg ^ 0xFFFFFFFF


# LevelDB/TensorFlow "masked" CRCs (used by the SavedModel checkpoint reader):
# rotating and offsetting keeps a CRC of data that itself holds CRCs well mixed.
_MASK_DELTA = 0xA282EAD8


def mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF
