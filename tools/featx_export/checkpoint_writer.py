"""Write a TensorFlow checkpoint bundle (prefix.index + prefix.data-*) the way
TF's BundleWriter does, so tests can make MobileNetV2 checkpoints without TF.

TF1 style keys tensors by variable name. TF2 style keys them by object path
("<path>/.ATTRIBUTES/VARIABLE_VALUE") and adds a `_CHECKPOINTABLE_OBJECT_GRAPH`
string tensor whose nodes give each key its variable name (full_name).
"""

from __future__ import annotations

import os
import struct
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import ir, protowire, sstable
from .crc32c import crc32c, mask
from .mobilenet_names import keras_variables, slim_variables
from .tf_checkpoint import DTYPES, OBJECT_GRAPH_KEY

VARIABLE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_DTYPE_ENUM = {np.dtype(v): k for k, v in DTYPES.items()}
DT_STRING = 7


def _shape_proto(shape: Sequence[int]) -> bytes:
    return b"".join(protowire.field_bytes(2, protowire.field_varint(1, d)) for d in shape)


def _entry(dtype: int, shape, shard: int, offset: int, size: int, crc: int) -> bytes:
    # BundleEntryProto; proto3 leaves zero-valued scalars out, as TF's writer does.
    out = protowire.field_varint(1, dtype) + protowire.field_bytes(2, _shape_proto(shape))
    for number, value in ((3, shard), (4, offset), (5, size)):
        if value:
            out += protowire.field_varint(number, value)
    return out + protowire.field_fixed32(6, mask(crc))


def _string_tensor(strings: List[bytes]) -> Tuple[bytes, int]:
    """On-disk string tensor and its CRC (lengths as uint32, masked length CRC, bytes)."""
    sizes = b"".join(struct.pack("<I", len(s)) for s in strings)
    length_crc = struct.pack("<I", mask(crc32c(sizes)))
    body = b"".join(strings)
    data = b"".join(protowire.encode_varint(len(s)) for s in strings) + length_crc + body
    return data, crc32c(sizes + length_crc + body)


def object_graph(entries: List[Tuple[List[str], str, str]]) -> bytes:
    """A TrackableObjectGraph from (object path, full_name, checkpoint_key) triples:
    node 0 is the root, one node per path component, the variable's value as the
    VARIABLE_VALUE attribute of its node."""
    children: List[List[Tuple[str, int]]] = [[]]
    attributes: List[List[Tuple[str, str]]] = [[]]
    index: Dict[Tuple[str, ...], int] = {(): 0}
    for path, full_name, key in entries:
        node = 0
        for depth in range(1, len(path) + 1):
            prefix = tuple(path[:depth])
            if prefix not in index:
                index[prefix] = len(children)
                children.append([])
                attributes.append([])
                children[node].append((path[depth - 1], index[prefix]))
            node = index[prefix]
        attributes[node].append((full_name, key))
    nodes = b""
    for kids, attrs in zip(children, attributes):
        body = b"".join(protowire.field_bytes(1, protowire.field_varint(1, nid)
                                              + protowire.field_bytes(2, name))
                        for name, nid in kids)
        body += b"".join(protowire.field_bytes(2, protowire.field_bytes(1, "VARIABLE_VALUE")
                                               + protowire.field_bytes(2, full)
                                               + protowire.field_bytes(3, key))
                         for full, key in attrs)
        nodes += protowire.field_bytes(1, body)
    return nodes


def write_checkpoint(prefix: str, tensors: Dict[str, np.ndarray], *, compress: bool = False,
                     tf2: bool = False, object_paths: Optional[Dict[str, List[str]]] = None,
                     num_shards: int = 1, block_size: int = 4096) -> str:
    """Write `tensors` ({variable name: array}) as a bundle at `prefix`; returns prefix.

    compress: Snappy data and index blocks (kept only where they shrink, as TF does).
    tf2: object-path keys plus an object graph; `object_paths` maps a variable
    name to its path (default: the name split on "/"), e.g. ["variables", "3"]
    like Hub's TF2 exports, to prove names come from the graph, not the keys.
    """
    keyed: Dict[str, np.ndarray] = {}
    graph_entries = []
    for name, array in tensors.items():
        key = name
        if tf2:
            path = (object_paths or {}).get(name) or name.split("/")
            key = "/".join(path) + VARIABLE_SUFFIX
            graph_entries.append((list(path), name, key))
        if key in keyed:
            raise ValueError(f"two tensors map to checkpoint key {key!r}")
        keyed[key] = np.asarray(array)
    return write_bundle(prefix, keyed, object_graph=object_graph(graph_entries) if tf2 else None,
                        compress=compress, num_shards=num_shards, block_size=block_size)


def write_bundle(prefix: str, keyed: Dict[str, np.ndarray], *, object_graph: Optional[bytes] = None,
                 compress: bool = False, num_shards: int = 1, block_size: int = 4096) -> str:
    """The bundle itself: `keyed` ({checkpoint key: array}) plus, when given, a
    serialized TrackableObjectGraph as the `_CHECKPOINTABLE_OBJECT_GRAPH` string."""
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    shards = [bytearray() for _ in range(num_shards)]
    index: List[Tuple[bytes, bytes]] = []
    for i, key in enumerate(sorted(keyed)):
        array = np.asarray(keyed[key])
        dtype = _DTYPE_ENUM.get(array.dtype.newbyteorder("="))
        if dtype is None:
            raise ValueError(f"{key}: dtype {array.dtype} has no TF bundle encoding here")
        raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        shard = i % num_shards
        index.append((key.encode(), _entry(dtype, array.shape, shard, len(shards[shard]),
                                           len(raw), crc32c(raw))))
        shards[shard] += raw
    if object_graph is not None:
        data, crc = _string_tensor([object_graph])
        index.append((OBJECT_GRAPH_KEY.encode(), _entry(DT_STRING, (), 0, len(shards[0]),
                                                         len(data), crc)))
        shards[0] += data
    # BundleHeaderProto: num_shards=1, endianness=2 (LITTLE=0, left out), version=3 {producer=1}.
    header = protowire.field_varint(1, num_shards) + protowire.field_bytes(
        3, protowire.field_varint(1, 1))
    index.append((b"", header))
    index.sort(key=lambda kv: kv[0])
    for shard_id, data in enumerate(shards):
        with open(f"{prefix}.data-{shard_id:05d}-of-{num_shards:05d}", "wb") as f:
            f.write(bytes(data))
    with open(prefix + ".index", "wb") as f:
        f.write(sstable.write_table(index, compress=compress, block_size=block_size))
    return prefix


def write_mobilenet_checkpoint(prefix: str, net: ir.Network, names: str = "slim",
                               name_prefix: str = "", **kwargs) -> str:
    """`net` as a checkpoint with slim or Keras variable names (optionally under
    a container prefix such as "module/"); kwargs go to write_checkpoint."""
    variables = slim_variables(net) if names == "slim" else keras_variables(net)
    return write_checkpoint(prefix, {name_prefix + k: v for k, v in variables.items()}, **kwargs)
