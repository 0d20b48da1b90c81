"""The SavedModel protos a Keras model's structure lives in, read by hand
(protowire.py: no protobuf runtime, no generated TF code).

Field numbers are those of the public .proto files:

  tensorflow/core/protobuf/saved_model.proto
    SavedModel        saved_model_schema_version=1 meta_graphs=2
  tensorflow/core/protobuf/meta_graph.proto
    MetaGraphDef      meta_info_def=1 graph_def=2 saver_def=3 collection_def=4
                      signature_def=5 asset_file_def=6 object_graph_def=7
    MetaInfoDef       meta_graph_version=1 tags=4 tensorflow_version=5
  tensorflow/core/protobuf/saved_object_graph.proto
    SavedObjectGraph  nodes=1 concrete_functions=2
    SavedObject       children=1 slot_variables=3, oneof kind: user_object=4
                      asset=5 function=6 variable=7 bare_concrete_function=8
                      constant=9 resource=10
    SavedUserObject   identifier=1 version=2 metadata=3 (Keras <= 2.4 put its
                      layer JSON here)
    SavedVariable     dtype=1 shape=2 trainable=3 synchronization=4
                      aggregation=5 name=6
  tensorflow/core/protobuf/trackable_object_graph.proto (the checkpoint's
  _CHECKPOINTABLE_OBJECT_GRAPH)
    TrackableObjectGraph  nodes=1
    TrackableObject   children=1 attributes=2 slot_variables=3
                      registered_saver=4 has_checkpoint_values=5
    ObjectReference   node_id=1 local_name=2
    SerializedTensor  name=1 full_name=2 checkpoint_key=3 optional_restore=4
    SlotVariableReference original_variable_node_id=1 slot_name=2
                      slot_variable_node_id=3
  tensorflow/python/keras/protobuf/saved_metadata.proto (keras_metadata.pb,
  Keras >= 2.5)
    SavedMetadata     nodes=1
    SavedObject       version=1 node_id=2 node_path=3 identifier=4 metadata=5
  tensorflow/core/framework/versions.proto
    VersionDef        producer=1 min_consumer=2 bad_consumers=3

Checkpoint keys join the escaped local names of the path from the root with
"/" (tensorflow/python/training/tracking/util.py `_escape_local_name`: "."
becomes "..", then "/" becomes ".S") and end in "/.ATTRIBUTES/<name>".
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from . import protowire

# SavedModel / MetaGraphDef / MetaInfoDef
SAVED_MODEL_SCHEMA_VERSION, SAVED_MODEL_META_GRAPHS = 1, 2
META_INFO_DEF, META_OBJECT_GRAPH_DEF = 1, 7
META_INFO_TAGS, META_INFO_TF_VERSION = 4, 5
# SavedObjectGraph / SavedObject
SOG_NODES = 1
SO_CHILDREN, SO_SLOT_VARIABLES = 1, 3
SO_KINDS = {4: "user_object", 5: "asset", 6: "function", 7: "variable",
            8: "bare_concrete_function", 9: "constant", 10: "resource"}
SO_USER_OBJECT, SO_FUNCTION, SO_VARIABLE = 4, 6, 7
USER_IDENTIFIER, USER_VERSION, USER_METADATA = 1, 2, 3
VARIABLE_DTYPE, VARIABLE_SHAPE, VARIABLE_NAME = 1, 2, 6
# TrackableObjectGraph
TOG_NODES = 1
TO_CHILDREN, TO_ATTRIBUTES, TO_SLOT_VARIABLES, TO_HAS_CHECKPOINT_VALUES = 1, 2, 3, 5
REF_NODE_ID, REF_LOCAL_NAME = 1, 2
TENSOR_NAME, TENSOR_FULL_NAME, TENSOR_CHECKPOINT_KEY = 1, 2, 3
SLOT_ORIGINAL, SLOT_NAME, SLOT_VARIABLE = 1, 2, 3
# SavedMetadata (keras_metadata.pb)
META_NODES = 1
KM_VERSION, KM_NODE_ID, KM_NODE_PATH, KM_IDENTIFIER, KM_METADATA = 1, 2, 3, 4, 5
# VersionDef
VERSION_PRODUCER, VERSION_MIN_CONSUMER = 1, 2

ESCAPE = "."
ATTRIBUTES = ".ATTRIBUTES"
OPTIMIZER_SLOT = ".OPTIMIZER_SLOT"
VARIABLE_VALUE = "VARIABLE_VALUE"


def escape_local_name(name: str) -> str:
    """TF's _escape_local_name: '.' -> '..', then '/' -> '.S'."""
    return name.replace(ESCAPE, ESCAPE * 2).replace("/", ESCAPE + "S")


def unescape_local_name(name: str) -> str:
    """The inverse of escape_local_name; ValueError on an escape TF never writes."""
    out = []
    i = 0
    while i < len(name):
        ch = name[i]
        if ch != ESCAPE:
            out.append(ch)
            i += 1
            continue
        nxt = name[i + 1] if i + 1 < len(name) else ""
        if nxt == ESCAPE:
            out.append(ESCAPE)
        elif nxt == "S":
            out.append("/")
        else:
            raise ValueError(f"{name!r}: '.' followed by {nxt!r} is not a TF object-name escape")
        i += 2
    return "".join(out)


def split_checkpoint_key(key: str) -> Tuple[List[str], str]:
    """'layer_with_weights-0/MobilenetV2.SConv.Sweights:0/.ATTRIBUTES/VARIABLE_VALUE'
    -> (['layer_with_weights-0', 'MobilenetV2/Conv/weights:0'], 'VARIABLE_VALUE').
    Slot variables ('.../.OPTIMIZER_SLOT/...') and keys without '.ATTRIBUTES'
    (TF1 names) come back with an empty attribute name and the key unsplit."""
    parts = key.split("/")
    if OPTIMIZER_SLOT in parts or ATTRIBUTES not in parts:
        return [key], ""
    at = parts.index(ATTRIBUTES)
    return [unescape_local_name(p) for p in parts[:at]], "/".join(parts[at + 1:])


@dataclass
class ObjectNode:
    """One node of a SavedObjectGraph or a TrackableObjectGraph."""
    children: List[Tuple[str, int]] = field(default_factory=list)  # (local_name, node id)
    kind: str = ""  # SavedObjectGraph: user_object, variable, function, ...; checkpoint: ""
    identifier: str = ""  # SavedUserObject.identifier ("_tf_keras_layer", ...)
    metadata: str = ""  # SavedUserObject.metadata (Keras <= 2.4 layer JSON)
    variable_name: str = ""  # SavedVariable.name
    attributes: List[Tuple[str, str, str]] = field(default_factory=list)  # (name, full_name, key)
    slot_variables: List[Tuple[int, str, int]] = field(default_factory=list)

    def child(self, name: str) -> Optional[int]:
        for local, node_id in self.children:
            if local == name:
                return node_id
        return None

    def checkpoint_key(self, attribute: str = VARIABLE_VALUE) -> Optional[str]:
        for name, _full, key in self.attributes:
            if name == attribute:
                return key
        return None

    def full_name(self, attribute: str = VARIABLE_VALUE) -> str:
        for name, full, _key in self.attributes:
            if name == attribute:
                return full
        return ""


@dataclass
class ObjectGraph:
    nodes: List[ObjectNode]

    def walk(self, path: Sequence[str], start: int = 0) -> Optional[int]:
        """The node reached from `start` along local names, or None."""
        node = start
        for name in path:
            node = self.nodes[node].child(name)
            if node is None:
                return None
        return node

    def paths(self) -> Dict[int, Tuple[str, ...]]:
        """Each reachable node's path from the root, as TF assigns them: breadth
        first, children in stored order, the first path found wins."""
        out: Dict[int, Tuple[str, ...]] = {0: ()}
        queue = deque([0])
        while queue:
            node = queue.popleft()
            for name, child in self.nodes[node].children:
                if child not in out:
                    out[child] = out[node] + (name,)
                    queue.append(child)
        return out

    def subtree(self, start: int) -> List[int]:
        """Every node reachable from `start`, breadth first (start included)."""
        seen = {start}
        order = [start]
        queue = deque([start])
        while queue:
            for _name, child in self.nodes[queue.popleft()].children:
                if child not in seen:
                    seen.add(child)
                    order.append(child)
                    queue.append(child)
        return order


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value or "")


def _refs(fields, number: int, count: int, what: str) -> List[Tuple[str, int]]:
    out = []
    for ref in fields.get(number, []):
        r = protowire.decode(ref)
        node_id = protowire.first(r, REF_NODE_ID, 0)
        if not 0 <= node_id < count:
            raise ValueError(f"{what}: child {_text(protowire.first(r, REF_LOCAL_NAME, b''))!r} "
                             f"points to node {node_id} of {count}")
        out.append((_text(protowire.first(r, REF_LOCAL_NAME, b"")), node_id))
    return out


def _slots(fields, count: int) -> List[Tuple[int, str, int]]:
    out = []
    for ref in fields.get(TO_SLOT_VARIABLES, []):
        r = protowire.decode(ref)
        out.append((protowire.first(r, SLOT_ORIGINAL, 0), _text(protowire.first(r, SLOT_NAME, b"")),
                    protowire.first(r, SLOT_VARIABLE, 0)))
    return out


def parse_trackable_object_graph(data: bytes) -> ObjectGraph:
    """A checkpoint's TrackableObjectGraph; ValueError when malformed."""
    raw = protowire.decode(data).get(TOG_NODES, [])
    nodes = []
    for i, body in enumerate(raw):
        f = protowire.decode(body)
        node = ObjectNode(children=_refs(f, TO_CHILDREN, len(raw), f"object graph node {i}"),
                          slot_variables=_slots(f, len(raw)))
        for attr in f.get(TO_ATTRIBUTES, []):
            a = protowire.decode(attr)
            node.attributes.append((_text(protowire.first(a, TENSOR_NAME, b"")),
                                    _text(protowire.first(a, TENSOR_FULL_NAME, b"")),
                                    _text(protowire.first(a, TENSOR_CHECKPOINT_KEY, b""))))
        nodes.append(node)
    if not nodes:
        raise ValueError("object graph has no nodes")
    return ObjectGraph(nodes)


def parse_saved_object_graph(data: bytes) -> ObjectGraph:
    """A MetaGraphDef's SavedObjectGraph (kinds, Keras <= 2.4 metadata, variable names)."""
    raw = protowire.decode(data).get(SOG_NODES, [])
    nodes = []
    for i, body in enumerate(raw):
        f = protowire.decode(body)
        node = ObjectNode(children=_refs(f, SO_CHILDREN, len(raw), f"SavedObjectGraph node {i}"))
        for number, kind in SO_KINDS.items():
            if number in f:
                node.kind = kind
        if SO_USER_OBJECT in f:
            u = protowire.decode(protowire.first(f, SO_USER_OBJECT))
            node.identifier = _text(protowire.first(u, USER_IDENTIFIER, b""))
            node.metadata = _text(protowire.first(u, USER_METADATA, b""))
        if SO_VARIABLE in f:
            v = protowire.decode(protowire.first(f, SO_VARIABLE))
            node.variable_name = _text(protowire.first(v, VARIABLE_NAME, b""))
        nodes.append(node)
    return ObjectGraph(nodes)


@dataclass
class MetaGraph:
    tags: List[str]
    tensorflow_version: str
    object_graph: Optional[ObjectGraph]


def parse_saved_model(data: bytes) -> Tuple[int, List[MetaGraph]]:
    """(schema version, meta graphs) of a saved_model.pb. Only the metadata and
    the object graph are decoded; the GraphDef is skipped over."""
    top = protowire.decode(data)
    graphs = []
    for body in top.get(SAVED_MODEL_META_GRAPHS, []):
        f = protowire.decode(body)
        info = protowire.decode(protowire.first(f, META_INFO_DEF, b""))
        object_graph = None
        if META_OBJECT_GRAPH_DEF in f:
            object_graph = parse_saved_object_graph(protowire.first(f, META_OBJECT_GRAPH_DEF))
        graphs.append(MetaGraph(tags=[_text(t) for t in info.get(META_INFO_TAGS, [])],
                                tensorflow_version=_text(protowire.first(info, META_INFO_TF_VERSION,
                                                                         b"")),
                                object_graph=object_graph))
    return protowire.first(top, SAVED_MODEL_SCHEMA_VERSION, 0), graphs


@dataclass
class KerasNode:
    """One Keras object's metadata: where it sits and its JSON config string."""
    node_id: int
    node_path: str  # "root", "root.layer_with_weights-1", ...
    identifier: str  # "_tf_keras_layer", "_tf_keras_sequential", "_tf_keras_network", ...
    metadata: str


def parse_saved_metadata(data: bytes) -> List[KerasNode]:
    """keras_metadata.pb (SavedMetadata)."""
    out = []
    for body in protowire.decode(data).get(META_NODES, []):
        f = protowire.decode(body)
        out.append(KerasNode(node_id=protowire.first(f, KM_NODE_ID, 0),
                             node_path=_text(protowire.first(f, KM_NODE_PATH, b"")),
                             identifier=_text(protowire.first(f, KM_IDENTIFIER, b"")),
                             metadata=_text(protowire.first(f, KM_METADATA, b""))))
    return out


def keras_nodes_from_object_graph(graph: ObjectGraph) -> List[KerasNode]:
    """Keras <= 2.4: the same records, from SavedUserObjects with metadata, with
    node paths computed the way Keras computes them (breadth-first, 'root.a.b')."""
    paths = graph.paths()
    out = []
    for node_id, node in enumerate(graph.nodes):
        if node.kind == "user_object" and node.identifier.startswith("_tf_keras") \
                and node.metadata and node_id in paths:
            out.append(KerasNode(node_id=node_id, node_path=".".join(("root",) + paths[node_id]),
                                 identifier=node.identifier, metadata=node.metadata))
    return out


# ---- writing (test fixtures) ------------------------------------------------------------------

def _version(producer: int, min_consumer: int = 1) -> bytes:
    return protowire.field_varint(VERSION_PRODUCER, producer) + \
        protowire.field_varint(VERSION_MIN_CONSUMER, min_consumer)


def _shape(shape: Sequence[int]) -> bytes:
    # TensorShapeProto: dim=2 { size=1 }
    return b"".join(protowire.field_bytes(2, protowire.field_varint(1, d) if d else b"")
                    for d in shape)


def _ref(name: str, node_id: int) -> bytes:
    # TF 2.14 writes local_name before node_id (seen in the shared fixtures);
    # proto3 leaves a zero node_id out.
    out = protowire.field_bytes(REF_LOCAL_NAME, name)
    return out + (protowire.field_varint(REF_NODE_ID, node_id) if node_id else b"")


def _has_values(graph: ObjectGraph) -> List[bool]:
    """TrackableObject.has_checkpoint_values: the node or a descendant holds a value."""
    memo: Dict[int, bool] = {}

    def visit(i: int, active) -> bool:
        if i in memo:
            return memo[i]
        if i in active:
            return False
        active.add(i)
        node = graph.nodes[i]
        value = bool(node.attributes) or any([visit(c, active) for _, c in node.children])
        active.discard(i)
        memo[i] = value
        return value

    return [visit(i, set()) for i in range(len(graph.nodes))]


def encode_trackable_object_graph(graph: ObjectGraph) -> bytes:
    nodes = b""
    for node, has_values in zip(graph.nodes, _has_values(graph)):
        body = b"".join(protowire.field_bytes(TO_CHILDREN, _ref(n, i)) for n, i in node.children)
        for name, full, key in node.attributes:
            body += protowire.field_bytes(TO_ATTRIBUTES, protowire.field_bytes(TENSOR_NAME, name)
                                          + protowire.field_bytes(TENSOR_FULL_NAME, full)
                                          + protowire.field_bytes(TENSOR_CHECKPOINT_KEY, key))
        for original, slot, variable in node.slot_variables:
            body += protowire.field_bytes(TO_SLOT_VARIABLES,
                                          protowire.field_varint(SLOT_ORIGINAL, original)
                                          + protowire.field_bytes(SLOT_NAME, slot)
                                          + protowire.field_varint(SLOT_VARIABLE, variable))
        # google.protobuf.BoolValue: {value=1: true}, or empty for false, as TF writes it.
        body += protowire.field_bytes(TO_HAS_CHECKPOINT_VALUES,
                                      protowire.field_varint(1, 1) if has_values else b"")
        nodes += protowire.field_bytes(TOG_NODES, body)
    return nodes


def encode_saved_object(node: ObjectNode, variable: Optional[Tuple[int, Sequence[int]]] = None
                        ) -> bytes:
    """One SavedObject; `variable` = (dtype enum, shape) for a SavedVariable node."""
    body = b"".join(protowire.field_bytes(SO_CHILDREN, _ref(n, c)) for n, c in node.children)
    if node.kind == "user_object":
        user = protowire.field_bytes(USER_IDENTIFIER, node.identifier) + \
            protowire.field_bytes(USER_VERSION, _version(1))
        if node.metadata:
            user += protowire.field_bytes(USER_METADATA, node.metadata)
        body += protowire.field_bytes(SO_USER_OBJECT, user)
    elif node.kind == "variable":
        dtype, shape = variable
        var = protowire.field_varint(VARIABLE_DTYPE, dtype) + \
            protowire.field_bytes(VARIABLE_SHAPE, _shape(shape)) + \
            protowire.field_varint(3, 1) + protowire.field_bytes(VARIABLE_NAME, node.variable_name)
        body += protowire.field_bytes(SO_VARIABLE, var)
    elif node.kind == "function":
        body += protowire.field_bytes(SO_FUNCTION, b"")
    return body


def encode_saved_object_graph(graph: ObjectGraph, variables: Dict[int, Tuple[int, Sequence[int]]]
                              ) -> bytes:
    """`variables`: node id -> (dtype enum, shape) of each SavedVariable node."""
    return b"".join(protowire.field_bytes(SOG_NODES, encode_saved_object(node, variables.get(i)))
                    for i, node in enumerate(graph.nodes))


def encode_saved_model(object_graph: bytes, tags=("serve",), tensorflow_version: str = "") -> bytes:
    info = b"".join(protowire.field_bytes(META_INFO_TAGS, t) for t in tags)
    if tensorflow_version:
        info += protowire.field_bytes(META_INFO_TF_VERSION, tensorflow_version)
    meta = protowire.field_bytes(META_INFO_DEF, info) + \
        protowire.field_bytes(META_OBJECT_GRAPH_DEF, object_graph)
    return protowire.field_varint(SAVED_MODEL_SCHEMA_VERSION, 1) + \
        protowire.field_bytes(SAVED_MODEL_META_GRAPHS, meta)


def encode_saved_metadata(nodes: Sequence[KerasNode]) -> bytes:
    out = b""
    for n in nodes:
        body = protowire.field_bytes(KM_VERSION, _version(2))
        if n.node_id:
            body += protowire.field_varint(KM_NODE_ID, n.node_id)
        body += protowire.field_bytes(KM_NODE_PATH, n.node_path) + \
            protowire.field_bytes(KM_IDENTIFIER, n.identifier) + \
            protowire.field_bytes(KM_METADATA, n.metadata)
        out += protowire.field_bytes(META_NODES, body)
    return out
