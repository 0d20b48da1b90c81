"""The leveldb table ("SSTable") format that TF checkpoint .index files use.

File = data blocks, a metaindex block, an index block, then a 48-byte footer:
two block handles (varint offset, varint size) padded to 40 bytes and the
magic 0xdb4775248b80fb57 (fixed64, little endian). Every block is followed by
a 5-byte trailer: compression type (0 none, 1 Snappy) and the masked CRC-32C
of the stored block bytes plus that type byte.

A block holds entries (varint shared, varint non_shared, varint value_len,
key suffix, value), keys prefix-compressed against the previous key and
reset at restart points, then uint32 restart offsets and their count. The
index block maps a key >= every key of a data block to that block's handle.
"""

from __future__ import annotations

import struct
from typing import Iterator, List, Optional, Tuple

from . import protowire
from .crc32c import crc32c, mask, unmask

MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
TRAILER_SIZE = 5
NO_COMPRESSION, SNAPPY = 0, 1


class TableError(ValueError):
    """A table that is truncated, corrupt or in an unsupported variant."""


def _snappy():
    try:
        import snappy  # python3-snappy
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise TableError("this table has Snappy-compressed blocks; install python3-snappy "
                         "(Debian) to read it") from exc
    return snappy


def _read_handle(buf, pos: int) -> Tuple[Tuple[int, int], int]:
    offset, pos = protowire.read_varint(buf, pos)
    size, pos = protowire.read_varint(buf, pos)
    return (offset, size), pos


def _encode_handle(offset: int, size: int) -> bytes:
    return protowire.encode_varint(offset) + protowire.encode_varint(size)


def read_block(data: bytes, handle: Tuple[int, int], what: str = "block") -> bytes:
    """Block contents after checking the trailer CRC and undoing compression."""
    offset, size = handle
    end = offset + size + TRAILER_SIZE
    if offset < 0 or end > len(data):
        raise TableError(f"{what} at offset {offset} size {size} runs past the end of the "
                         f"file ({len(data)} bytes): truncated table?")
    stored = data[offset:offset + size]
    kind = data[offset + size]
    masked = struct.unpack_from("<I", data, offset + size + 1)[0]
    actual = crc32c(data[offset:offset + size + 1])  # block bytes + type byte
    if unmask(masked) != actual:
        raise TableError(f"{what} at offset {offset}: CRC-32C mismatch (stored "
                         f"{unmask(masked):#010x}, computed {actual:#010x}): corrupt table")
    if kind == NO_COMPRESSION:
        return bytes(stored)
    if kind == SNAPPY:
        try:
            return _snappy().decompress(bytes(stored))
        except Exception as exc:
            raise TableError(f"{what} at offset {offset}: Snappy data does not decompress "
                             f"({exc})") from exc
    raise TableError(f"{what} at offset {offset}: unsupported compression type {kind} "
                     "(only 0 none and 1 Snappy exist in leveldb/TF tables)")


def iter_block(block: bytes, what: str = "block") -> Iterator[Tuple[bytes, bytes]]:
    """(key, value) pairs of one decoded block, in stored order."""
    if len(block) < 4:
        raise TableError(f"{what}: {len(block)} bytes is too short for a restart count")
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * num_restarts
    if num_restarts == 0 or limit < 0:
        raise TableError(f"{what}: bad restart count {num_restarts} for {len(block)} bytes")
    restarts = set(struct.unpack_from(f"<{num_restarts}I", block, limit))
    pos = 0
    key = b""
    try:
        while pos < limit:
            entry_start = pos
            shared, pos = protowire.read_varint(block, pos)
            non_shared, pos = protowire.read_varint(block, pos)
            value_len, pos = protowire.read_varint(block, pos)
            if shared > len(key) or (entry_start in restarts and shared != 0):
                raise TableError(f"{what}: entry at {entry_start} shares {shared} bytes "
                                 f"with a {len(key)}-byte previous key")
            if pos + non_shared + value_len > limit:
                raise TableError(f"{what}: entry at {entry_start} runs into the restart array")
            key = key[:shared] + block[pos:pos + non_shared]
            pos += non_shared
            yield key, block[pos:pos + value_len]
            pos += value_len
    except ValueError as exc:
        if isinstance(exc, TableError):
            raise
        raise TableError(f"{what}: {exc}") from exc


def read_footer(data: bytes, name: str = "table") -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """(metaindex handle, index handle) from the 48-byte footer."""
    if len(data) < FOOTER_SIZE:
        raise TableError(f"{name}: {len(data)} bytes is shorter than the {FOOTER_SIZE}-byte "
                         "footer: truncated or not a TF checkpoint index")
    footer = data[len(data) - FOOTER_SIZE:]
    magic = struct.unpack_from("<Q", footer, 40)[0]
    if magic != MAGIC:
        raise TableError(f"{name}: footer magic {magic:#018x} is not {MAGIC:#018x}: truncated "
                         "or not a TF checkpoint index")
    try:
        metaindex, pos = _read_handle(footer, 0)
        index, _ = _read_handle(footer, pos)
    except ValueError as exc:
        raise TableError(f"{name}: unreadable footer ({exc})") from exc
    return metaindex, index


def data_blocks(data: bytes, name: str = "table") -> List[Tuple[bytes, Tuple[int, int], int]]:
    """(index key, handle, compression type) of every data block."""
    _, index_handle = read_footer(data, name)
    index = read_block(data, index_handle, f"{name} index block")
    out = []
    for separator, handle_bytes in iter_block(index, f"{name} index block"):
        try:
            handle, _ = _read_handle(handle_bytes, 0)
        except ValueError as exc:
            raise TableError(f"{name}: bad block handle under index key {separator!r}") from exc
        if handle[0] + handle[1] + TRAILER_SIZE > len(data):
            raise TableError(f"{name}: data block at {handle[0]} size {handle[1]} runs past the "
                             f"end of the file ({len(data)} bytes): truncated table?")
        out.append((separator, handle, data[handle[0] + handle[1]]))
    return out


def read_table(data: bytes, name: str = "table") -> List[Tuple[bytes, bytes]]:
    """Every (key, value) of a whole table file, in key order."""
    entries: List[Tuple[bytes, bytes]] = []
    for separator, handle, _kind in data_blocks(data, name):
        what = f"{name} data block at {handle[0]}"
        for key, value in iter_block(read_block(data, handle, what), what):
            if entries and key <= entries[-1][0]:
                raise TableError(f"{name}: keys out of order ({entries[-1][0]!r} then {key!r})")
            if key > separator:
                raise TableError(f"{name}: key {key!r} is beyond its index key {separator!r}")
            entries.append((key, value))
    return entries


class _BlockBuilder:
    def __init__(self, restart_interval: int):
        self.interval = restart_interval
        self.buf = bytearray()
        self.restarts = [0]
        self.count = 0
        self.last = b""

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.count < self.interval:
            n = min(len(key), len(self.last))
            while shared < n and key[shared] == self.last[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buf))
            self.count = 0
        self.buf += protowire.encode_varint(shared)
        self.buf += protowire.encode_varint(len(key) - shared)
        self.buf += protowire.encode_varint(len(value))
        self.buf += key[shared:] + value
        self.last = key
        self.count += 1

    def size(self) -> int:
        return len(self.buf) + 4 * len(self.restarts) + 4

    def finish(self) -> bytes:
        tail = struct.pack(f"<{len(self.restarts)}I", *self.restarts)
        return bytes(self.buf) + tail + struct.pack("<I", len(self.restarts))


def _shortest_separator(start: bytes, limit: bytes) -> bytes:
    """leveldb's BytewiseComparator::FindShortestSeparator: a short key in [start, limit)."""
    n = min(len(start), len(limit))
    i = 0
    while i < n and start[i] == limit[i]:
        i += 1
    if i < n and start[i] < 0xFF and start[i] + 1 < limit[i]:
        return start[:i] + bytes([start[i] + 1])
    return start


def _short_successor(key: bytes) -> bytes:
    """leveldb's FindShortSuccessor: a short key >= `key` (used after the last block)."""
    for i, b in enumerate(key):
        if b != 0xFF:
            return key[:i] + bytes([b + 1])
    return key


def write_table(entries, compress: bool = False, block_size: int = 4096,
                restart_interval: int = 16) -> bytes:
    """A table file holding `entries` ((key, value) pairs, sorted by key bytes).
    Index keys are leveldb's shortest separators, so a small table comes out
    byte-identical to what TF writes."""
    out = bytearray()

    def emit(block: bytes) -> Tuple[int, int]:
        kind = NO_COMPRESSION
        if compress:
            packed = _snappy().compress(block)
            if len(packed) < len(block) - len(block) // 8:  # leveldb keeps it only if 12.5% smaller
                block, kind = packed, SNAPPY
        handle = (len(out), len(block))
        out.extend(block)
        out.append(kind)
        out.extend(struct.pack("<I", mask(crc32c(block + bytes([kind])))))
        return handle

    index = _BlockBuilder(1)
    block = _BlockBuilder(restart_interval)
    pending: Optional[Tuple[int, int]] = None  # handle of a flushed block awaiting its index key
    previous: Optional[bytes] = None
    for key, value in entries:
        if previous is not None and key <= previous:
            raise ValueError(f"table keys must be unique and sorted: {previous!r} then {key!r}")
        if pending is not None:
            # Like leveldb, the index entry waits for the next key to pick a short separator.
            index.add(_shortest_separator(previous, key), _encode_handle(*pending))
            pending = None
        block.add(key, value)
        previous = key
        if block.size() >= block_size:
            pending = emit(block.finish())
            block = _BlockBuilder(restart_interval)
    if block.count or previous is None:
        pending = emit(block.finish())
    index.add(_short_successor(previous or b""), _encode_handle(*pending))
    metaindex_handle = emit(_BlockBuilder(1).finish())
    index_handle = emit(index.finish())
    footer = _encode_handle(*metaindex_handle) + _encode_handle(*index_handle)
    footer += bytes(40 - len(footer)) + struct.pack("<Q", MAGIC)
    out.extend(footer)
    return bytes(out)
