"""Read a TensorFlow checkpoint bundle (prefix.index + prefix.data-NNNNN-of-MMMMM)
without TensorFlow.

The .index file is a leveldb table (see sstable.py) mapping tensor keys to
BundleEntryProto (dtype=1, shape=2, shard_id=3, offset=4, size=5,
crc32c=6 fixed32 masked, slices=7); the empty key holds BundleHeaderProto
(num_shards=1, endianness=2, version=3). Tensor bytes live in the data
shards at entry.offset, raw little-endian, checksummed by the masked CRC-32C.

TF2 checkpoints key tensors by object path ("model/layer/kernel/.ATTRIBUTES/
VARIABLE_VALUE"); the `_CHECKPOINTABLE_OBJECT_GRAPH` entry (a serialized
TrackableObjectGraph string tensor) gives each key its variable's original
name (SerializedTensor.full_name), which is what `read_checkpoint` returns.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import protowire, sstable
from .crc32c import crc32c, unmask

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
DT_STRING = 7
DT_BFLOAT16 = 14

# tensorflow/core/framework/types.proto DataType -> numpy (little endian).
DTYPES = {
    1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8,
    9: np.int64, 10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64,
    8: np.complex64, 18: np.complex128,
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: missing files, corruption, unsupported content."""


@dataclass
class Entry:
    key: str
    dtype: int
    shape: Tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: Optional[int]  # unmasked; None when the writer stored none
    sliced: bool = False


@dataclass
class Checkpoint:
    """An opened bundle: entries by raw key, plus the TF2 key -> variable-name map."""
    prefix: str
    num_shards: int
    big_endian: bool
    entries: Dict[str, Entry]
    names: Dict[str, str] = field(default_factory=dict)  # checkpoint key -> full_name
    notes: List[str] = field(default_factory=list)
    object_graph: bytes = b""  # the serialized TrackableObjectGraph (TF2), else empty

    def keys(self) -> List[str]:
        """Raw checkpoint keys (the header entry excluded)."""
        return list(self.entries)

    def shard_path(self, shard_id: int) -> str:
        return f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}"

    def read(self, key: str) -> np.ndarray:
        entry = self.entries.get(key)
        if entry is None:
            raise CheckpointError(f"{self.prefix}: no tensor {key!r}; keys start with "
                                  f"{sorted(self.entries)[:5]}")
        if entry.sliced:
            raise CheckpointError(f"{self.prefix}: {key!r} is a partitioned (sliced) variable, "
                                  "which this reader does not reassemble")
        if entry.dtype == DT_STRING:
            return _decode_strings(self._read_bytes(entry, check=False), entry, self.prefix)
        return _decode_numeric(self._read_bytes(entry), entry, self.big_endian, self.prefix)

    def _read_bytes(self, entry: Entry, check: bool = True) -> bytes:
        path = self.shard_path(entry.shard_id)
        try:
            with open(path, "rb") as f:
                f.seek(entry.offset)
                raw = f.read(entry.size)
        except OSError as exc:
            raise CheckpointError(f"{entry.key!r}: cannot read data shard {path}: {exc}") from exc
        if len(raw) != entry.size:
            raise CheckpointError(f"{entry.key!r}: data shard {path} ends before offset "
                                  f"{entry.offset} + {entry.size}: truncated data file")
        if check and entry.crc32c is not None and crc32c(raw) != entry.crc32c:
            raise CheckpointError(f"{entry.key!r}: CRC-32C mismatch in {path} at offset "
                                  f"{entry.offset} (stored {entry.crc32c:#010x}, computed "
                                  f"{crc32c(raw):#010x}): corrupt data file")
        return raw

    def variable_name(self, key: str) -> str:
        return self.names.get(key, key)

    def tensors(self, raw_keys: bool = False) -> Dict[str, np.ndarray]:
        """Numeric tensors by variable name (or checkpoint key); strings, partitioned
        variables and dtypes without a numpy equivalent are skipped (with a note)."""
        out: Dict[str, np.ndarray] = {}
        for key, entry in self.entries.items():
            if entry.dtype == DT_STRING or entry.sliced:
                continue
            if entry.dtype not in DTYPES and entry.dtype != DT_BFLOAT16:
                self.notes.append(f"skipped {key!r}: unsupported dtype enum {entry.dtype}")
                continue
            name = key if raw_keys else self.variable_name(key)
            if name in out:  # two keys claiming one full_name: the later keeps its key
                name = key
            out[name] = self.read(key)
        return out


def _parse_shape(buf: bytes) -> Tuple[int, ...]:
    fields = protowire.decode(buf)
    if protowire.first(fields, 3, 0):
        raise CheckpointError("tensor shape of unknown rank")
    dims = []
    for dim in fields.get(2, []):
        size = protowire.as_int64(protowire.first(protowire.decode(dim), 1, 0))
        if size < 0:
            raise CheckpointError(f"tensor shape with unknown dimension {size}")
        dims.append(size)
    return tuple(dims)


def _parse_entry(key: str, value: bytes) -> Entry:
    try:
        f = protowire.decode(value)
        shape = _parse_shape(protowire.first(f, 2, b""))
    except ValueError as exc:
        raise CheckpointError(f"entry {key!r}: unreadable BundleEntryProto ({exc})") from exc
    crc = protowire.first(f, 6)
    return Entry(key=key, dtype=protowire.first(f, 1, 0), shape=shape,
                 shard_id=protowire.first(f, 3, 0), offset=protowire.first(f, 4, 0),
                 size=protowire.first(f, 5, 0), crc32c=None if crc is None else unmask(crc),
                 sliced=bool(f.get(7)))


def _decode_numeric(raw: bytes, entry: Entry, big_endian: bool, where: str) -> np.ndarray:
    count = int(np.prod(entry.shape, dtype=np.int64))
    if entry.dtype == DT_BFLOAT16:
        bits = np.frombuffer(raw, dtype=">u2" if big_endian else "<u2")
        if bits.size != count:
            raise CheckpointError(f"{where}: {entry.key!r} holds {len(raw)} bytes, not "
                                  f"{count} bfloat16 values")
        return (bits.astype(np.uint32) << 16).view(np.float32).reshape(entry.shape)
    dtype = DTYPES.get(entry.dtype)
    if dtype is None:
        raise CheckpointError(f"{where}: {entry.key!r} has unsupported dtype enum {entry.dtype}")
    dt = np.dtype(dtype).newbyteorder(">" if big_endian else "<")
    if len(raw) != count * dt.itemsize:
        raise CheckpointError(f"{where}: {entry.key!r} holds {len(raw)} bytes, not "
                              f"{count} x {dt.itemsize} for shape {entry.shape}")
    return np.frombuffer(raw, dtype=dt).astype(dtype).reshape(entry.shape)


def _decode_strings(raw: bytes, entry: Entry, where: str) -> np.ndarray:
    """[varint len]*N, masked CRC of the lengths (as uint32), then the string bytes.
    The entry's CRC covers the uint32 lengths, that masked CRC, then the bytes."""
    count = int(np.prod(entry.shape, dtype=np.int64))
    try:
        lengths = []
        pos = 0
        for _ in range(count):
            n, pos = protowire.read_varint(raw, pos)
            lengths.append(n)
        stored = struct.unpack_from("<I", raw, pos)[0]
    except (ValueError, struct.error) as exc:
        raise CheckpointError(f"{where}: string tensor {entry.key!r} is malformed ({exc})") \
            from exc
    sizes = b"".join(struct.pack("<I", n) if n <= 0xFFFFFFFF else struct.pack("<Q", n)
                     for n in lengths)
    if unmask(stored) != crc32c(sizes):
        raise CheckpointError(f"{where}: string tensor {entry.key!r}: length checksum mismatch")
    pos += 4
    if pos + sum(lengths) != len(raw):
        raise CheckpointError(f"{where}: string tensor {entry.key!r}: {len(raw)} bytes do not "
                              f"hold {count} strings of {sum(lengths)} bytes")
    if entry.crc32c is not None and crc32c(sizes + raw[pos - 4:]) != entry.crc32c:
        raise CheckpointError(f"{where}: string tensor {entry.key!r}: CRC-32C mismatch: "
                              "corrupt data file")
    out = np.empty(count, dtype=object)
    for i, n in enumerate(lengths):
        out[i] = raw[pos:pos + n]
        pos += n
    return out.reshape(entry.shape)


def _object_graph_names(graph: bytes) -> Dict[str, str]:
    """checkpoint_key -> full_name from a TrackableObjectGraph (nodes=1; node
    attributes=2; SerializedTensor name=1, full_name=2, checkpoint_key=3)."""
    names = {}
    for node in protowire.decode(graph).get(1, []):
        for attr in protowire.decode(node).get(2, []):
            a = protowire.decode(attr)
            key = protowire.first(a, 3, b"").decode("utf-8", "replace")
            full = protowire.first(a, 2, b"").decode("utf-8", "replace")
            if key and full:
                names[key] = full
    return names


def resolve_prefix(path: str) -> str:
    """The bundle prefix for a SavedModel dir, a variables dir, a prefix or its .index file."""
    path = os.fspath(path)
    candidates = []
    if os.path.isdir(path):
        candidates += [os.path.join(path, "variables", "variables"),
                       os.path.join(path, "variables")]
        candidates += sorted(os.path.join(path, n[:-len(".index")])
                             for n in os.listdir(path) if n.endswith(".index"))
    elif path.endswith(".index"):
        candidates.append(path[:-len(".index")])
    candidates.append(path)
    for prefix in candidates:
        if os.path.isfile(prefix + ".index"):
            return prefix
    raise CheckpointError(f"{path}: no checkpoint found (looked for "
                          f"{', '.join(c + '.index' for c in candidates[:3])})")


def open_checkpoint(path: str) -> Checkpoint:
    prefix = resolve_prefix(path)
    with open(prefix + ".index", "rb") as f:
        data = f.read()
    try:
        table = sstable.read_table(data, prefix + ".index")
    except sstable.TableError as exc:
        raise CheckpointError(str(exc)) from exc
    num_shards, big_endian = 1, False
    entries: Dict[str, Entry] = {}
    notes: List[str] = []
    slice_keys = 0
    for raw_key, value in table:
        if raw_key == b"":
            try:
                header = protowire.decode(value)
            except ValueError as exc:
                raise CheckpointError(f"{prefix}.index: unreadable bundle header ({exc})") \
                    from exc
            num_shards = protowire.first(header, 1, 1)
            big_endian = protowire.first(header, 2, 0) == 1
            continue
        if raw_key[:1] == b"\x00":
            # EncodeTensorNameSlice keys of partitioned variables: binary, not names.
            slice_keys += 1
            continue
        key = raw_key.decode("utf-8", "replace")
        entries[key] = _parse_entry(key, value)
    if not table or table[0][0] != b"":
        raise CheckpointError(f"{prefix}.index has no bundle header (empty key): not a TF "
                              "tensor bundle (a pre-2016 V1 checkpoint?)")
    if slice_keys:
        notes.append(f"skipped {slice_keys} slice entries of partitioned variables")
    for e in entries.values():
        if e.sliced:
            notes.append(f"partitioned variable {e.key!r} not reassembled (skipped)")
        elif not 0 <= e.shard_id < num_shards:
            raise CheckpointError(f"{e.key!r}: shard {e.shard_id} but the header says "
                                  f"{num_shards} shards")
    ckpt = Checkpoint(prefix=prefix, num_shards=num_shards, big_endian=big_endian,
                      entries=entries, notes=notes)
    if OBJECT_GRAPH_KEY in entries:
        graph = ckpt.read(OBJECT_GRAPH_KEY).reshape(-1)
        if graph.size != 1:
            raise CheckpointError(f"{prefix}: {OBJECT_GRAPH_KEY} is not a scalar string")
        ckpt.object_graph = bytes(graph[0])
        try:
            ckpt.names = _object_graph_names(graph[0])
        except ValueError as exc:
            raise CheckpointError(f"{prefix}: unreadable object graph ({exc})") from exc
    return ckpt


def read_checkpoint(path: str, raw_keys: bool = False) -> Dict[str, np.ndarray]:
    """All numeric tensors, keyed by variable name (TF2: the object graph's
    full_name; otherwise, or with raw_keys, the checkpoint key). String tensors
    (the object graph itself, asset paths) are skipped."""
    return open_checkpoint(path).tensors(raw_keys)
