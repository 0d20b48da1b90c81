"""Protocol-buffer wire format, by hand: enough to read and write the few TF
messages a checkpoint holds (no generated TF code, no protobuf runtime needed).

A message decodes to {field_number: [values...]}; varints come back as ints,
fixed32/fixed64 as ints, length-delimited fields as bytes (decode nested
messages again with `decode`).
"""

from __future__ import annotations

import struct
from typing import Dict, List, Tuple

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


def read_varint(buf, pos: int) -> Tuple[int, int]:
    """(value, next position); raises ValueError on a varint running off the end."""
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def decode(buf) -> Dict[int, List]:
    fields: Dict[int, List] = {}
    pos = 0
    end = len(buf)
    while pos < end:
        tag, pos = read_varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise ValueError("protobuf field number 0")
        if wire == VARINT:
            value, pos = read_varint(buf, pos)
        elif wire == FIXED64:
            if pos + 8 > end:
                raise ValueError("truncated fixed64")
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == LENGTH:
            size, pos = read_varint(buf, pos)
            if pos + size > end:
                raise ValueError("length-delimited field runs past the message")
            value = bytes(buf[pos:pos + size])
            pos += size
        elif wire == FIXED32:
            if pos + 4 > end:
                raise ValueError("truncated fixed32")
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def first(fields: Dict[int, List], number: int, default=None):
    values = fields.get(number)
    return values[-1] if values else default  # proto3: the last occurrence wins


def as_int64(value: int) -> int:
    """Varints carry negative int64 as 64-bit two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


def encode_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _tag(number: int, wire: int) -> bytes:
    return encode_varint(number << 3 | wire)


def field_varint(number: int, value: int) -> bytes:
    return _tag(number, VARINT) + encode_varint(value)


def field_fixed32(number: int, value: int) -> bytes:
    return _tag(number, FIXED32) + struct.pack("<I", value)


def field_bytes(number: int, value) -> bytes:
    if isinstance(value, str):
        value = value.encode("utf-8")
    return _tag(number, LENGTH) + encode_varint(len(value)) + bytes(value)
