"""MobileNetV2 models from .keras archives and bare .weights.h5 files (zipfile + h5py).

A .keras file (Keras 3, and tf.keras 2.12-2.15 with model.save("m.keras")) is
a zip of config.json (the model config), metadata.json ({"keras_version",
"date_saved"}) and model.weights.h5. model.save_weights("m.weights.h5")
writes that HDF5 file alone, so its config has to come from elsewhere
(--keras-config: a JSON file or the .keras archive).

The HDF5 file holds no layer names: each layer's variables are datasets
"0", "1", ... in a group "<path>/vars", where the path names the layer by
its class and position (keras saving_lib._save_container_state):
"layers/functional/layers/conv2d_3" in Keras 3,
"_layer_checkpoint_dependencies/functional/_layer_checkpoint_dependencies/conv2d_3"
in tf.keras. keras_model.flatten works those paths out from the config;
this module finds the groups (also when a Windows save wrote the path with
backslashes into one group name) and checks that the config and the file
agree group for group before any weight is used.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import ir
from . import keras_model as km

CONFIG_NAME = "config.json"
METADATA_NAME = "metadata.json"
WEIGHTS_NAME = "model.weights.h5"


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ValueError("reading Keras weights needs h5py (Debian: python3-h5py)") from exc
    return h5py


def _one_line(exc) -> str:
    return " ".join(str(exc).split())


def _open_zip(path: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path, "r")
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable .keras archive (zip: {_one_line(exc)})") from None


def _member(path: str, zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        return zf.read(name)
    except KeyError:
        raise ValueError(f"{path}: the archive has no {name} (members: "
                         f"{', '.join(zf.namelist()[:6]) or 'none'})") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise ValueError(f"{path}: {name} in the archive is damaged ({_one_line(exc)})") from None


def archive_config(path: str) -> dict:
    """config.json of a .keras archive, parsed."""
    path = os.fspath(path)
    with _open_zip(path) as zf:
        return km.parse_config(_member(path, zf, CONFIG_NAME), f"{path}:{CONFIG_NAME}")


class ArchiveStore(km.WeightStore):
    """The vars groups of a saving_lib HDF5 file, by logical path."""

    def __init__(self, where: str, h5):
        self.where = where
        self.vars: Dict[str, object] = {}
        self.backslashes = False
        h5py = _h5py()

        def visit(name, obj):
            if isinstance(obj, h5py.Group) and name.rsplit("/", 1)[-1] == "vars":
                logical = name[:-len("vars")].rstrip("/")
                if "\\" in logical:
                    self.backslashes = True
                    logical = logical.replace("\\", "/")
                self.vars[logical] = obj

        try:
            h5.visititems(visit)
        except (OSError, RuntimeError, KeyError) as exc:
            raise ValueError(f"{where}: damaged HDF5 file ({_one_line(exc)})") from None
        self.container = None
        tops = {p.split("/", 1)[0] for p in self.vars if p}
        for name in ("layers", "_layer_checkpoint_dependencies"):
            if name in tops:
                self.container = name
        if self.container is None:
            raise ValueError(f"{where}: no layers/*/vars groups: not a Keras 3 / tf.keras weights "
                             f"file (top-level groups: {', '.join(sorted(h5.keys())[:8]) or 'none'})")

    def arrays(self, path: str) -> Optional[List[np.ndarray]]:
        group = self.vars.get(path)
        if group is None:
            return None
        keys = list(group.keys())
        if sorted(keys, key=lambda k: (len(k), k)) != [str(i) for i in range(len(keys))]:
            raise km.KerasModelError(f"{self.where}: {path}/vars holds {sorted(keys)[:6]}, expected "
                                     "datasets named 0, 1, ...")
        out = []
        for i in range(len(keys)):
            ds = group[str(i)]
            try:
                value = np.asarray(ds[()])
            # h5py: OSError for damaged chunks, ValueError / TypeError for a damaged
            # datatype message ("Insufficient precision in available types ...")
            except (OSError, KeyError, ValueError, TypeError) as exc:
                raise km.KerasModelError(f"{self.where}: {path}/vars/{i} is unreadable "
                                         f"({_one_line(exc)})") from None
            dtype = ds.attrs.get("dtype")
            if isinstance(dtype, bytes):
                dtype = dtype.decode()
            if dtype == "bfloat16":  # stored as raw 16-bit words
                value = (value.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
            out.append(value)
        return out

    def named_weights(self, node: km.Node) -> Dict[str, np.ndarray]:
        names = km.positional_names(node)
        arrays = self.arrays(node.archive_path)
        if arrays is None:
            if names or node.cls in km.WEIGHTED_CLASSES:
                raise km.KerasModelError(f"{self.where}: {node.describe()}: no weight group "
                                         f"{node.archive_path}/vars in the file")
            return {}
        if not names and arrays:
            raise km.KerasModelError(f"{self.where}: {node.describe()}: {node.archive_path}/vars holds "
                                     f"{len(arrays)} arrays; featx does not read weights of a {node.cls}")
        if len(arrays) != len(names):
            raise km.KerasModelError(
                f"{self.where}: {node.describe()}: {node.archive_path}/vars holds {len(arrays)} arrays, "
                f"a {node.cls} with this config has {len(names)} ({', '.join(names)})")
        return dict(zip(names, arrays))


def _expected_groups(graph: km.Graph) -> Tuple[List[km.Node], set]:
    weighted = [n for n in graph.nodes.values()
                if km.positional_names(n) or n.cls in km.WEIGHTED_CLASSES]
    return weighted, {n.archive_path for n in graph.nodes.values() if n.archive_path}


def _match(store: ArchiveStore, graph: km.Graph) -> Tuple[List[str], List[str]]:
    """(groups the config needs that the file lacks, non-empty groups of the file no layer
    of the config claims)."""
    weighted, claimed = _expected_groups(graph)
    missing = [n.archive_path for n in weighted if not store.vars.get(n.archive_path)]
    prefix = store.container + "/"
    unclaimed = [p for p, g in store.vars.items()
                 if p.startswith(prefix) and len(g) and p not in claimed
                 and not any(c.startswith(p + "/") for c in claimed)]
    return missing, unclaimed


def _namings(store: ArchiveStore, keras_version: Optional[str]) -> List[km.ArchiveNaming]:
    if store.container == "layers":
        return [km.KERAS3_NAMING]
    if keras_version and keras_version.startswith(("2.12", "2.13")):
        return [km.TF_KERAS_213_NAMING, km.TF_KERAS_NAMING]
    return [km.TF_KERAS_NAMING, km.TF_KERAS_213_NAMING]


def read_weights_store(where: str, h5, root_cfg: dict, keras_version: Optional[str],
                       *, resolution, width_multiplier, labels, source_format: str,
                       what: str) -> ir.Network:
    store = ArchiveStore(where, h5)
    candidates = _namings(store, keras_version)
    tried = []
    for naming in candidates:
        graph = km.flatten(root_cfg, where, naming)
        missing, unclaimed = _match(store, graph)
        if not missing and not unclaimed:
            break
        tried.append((graph, missing, unclaimed))
    else:
        graph, missing, unclaimed = tried[0]
        if missing:
            node = next(n for n in graph.nodes.values() if n.archive_path == missing[0])
            more = f" ({len(missing) - 1} more layers lack theirs)" if len(missing) > 1 else ""
            mismatch = (f"; the file's groups ({len(unclaimed)} unclaimed) do not belong to this config"
                        if unclaimed else "")
            raise ValueError(f"{where}: {node.describe()}: no weight group {missing[0]}/vars in the "
                             f"file{more}{mismatch}")
        raise ValueError(f"{where}: weight group {unclaimed[0]}/vars belongs to no layer of the config "
                         f"({len(unclaimed)} such groups): the weights do not belong to this config")
    if naming is km.KERAS3_NAMING:
        dialect = "tf_keras, Keras 3's" if (keras_version or "").startswith("2.") else "Keras 3"
    else:
        dialect = "tf.keras 2.12/2.13" if naming.doubled else "tf.keras 2.14/2.15"
    header = (f"read {what} (keras_version {keras_version or 'not recorded'}): "
              f"{root_cfg['class_name']} model '{graph.root.name}', weights by position in "
              f"{dialect} group paths ({store.container}/...)"
              + (", backslashes in group names (saved on Windows)" if store.backslashes else ""))
    return km.build_network(graph, store, where=where, source_format=source_format,
                            resolution=resolution, width_multiplier=width_multiplier,
                            labels=labels, report_header=header)


def read_keras_archive(path: str, config=None, resolution: Optional[int] = None,
                       width_multiplier: Optional[float] = None,
                       labels: Optional[List[str]] = None) -> ir.Network:
    """A .keras archive: config.json (or `config`, a dict), metadata.json, model.weights.h5."""
    path = os.fspath(path)
    h5py = _h5py()
    with _open_zip(path) as zf:
        names = zf.namelist()
        if WEIGHTS_NAME not in names and "model.weights.npz" in names:
            raise ValueError(f"{path}: weights saved as model.weights.npz (pickled, not read here); "
                             "save the model with the default h5 weights format")
        root_cfg = config if config is not None else km.parse_config(
            _member(path, zf, CONFIG_NAME), f"{path}:{CONFIG_NAME}")
        keras_version = None
        if METADATA_NAME in names:
            try:
                keras_version = str(json.loads(_member(path, zf, METADATA_NAME)).get("keras_version"))
            except (ValueError, AttributeError):
                keras_version = None
        data = _member(path, zf, WEIGHTS_NAME)
    try:
        h5 = h5py.File(io.BytesIO(data), "r")
    except OSError as exc:
        raise ValueError(f"{path}: {WEIGHTS_NAME} in the archive is not a readable HDF5 file "
                         f"({_one_line(exc)})") from None
    with h5:
        return read_weights_store(path, h5, root_cfg, keras_version, resolution=resolution,
                                  width_multiplier=width_multiplier, labels=labels,
                                  source_format="keras", what=".keras archive")


def read_weights_h5(path: str, config, resolution: Optional[int] = None,
                    width_multiplier: Optional[float] = None,
                    labels: Optional[List[str]] = None) -> ir.Network:
    """A bare Keras 3 / tf.keras .weights.h5 with its model config (a dict)."""
    path = os.fspath(path)
    if config is None:
        raise ValueError(f"{path}: a .weights.h5 stores no layer names or model structure; pass "
                         "--keras-config with the model's config.json (or its .keras archive)")
    h5py = _h5py()
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({_one_line(exc)})") from None
    with h5:
        return read_weights_store(path, h5, config, None, resolution=resolution,
                                  width_multiplier=width_multiplier, labels=labels,
                                  source_format="keras_weights_h5", what=".weights.h5 + config")
