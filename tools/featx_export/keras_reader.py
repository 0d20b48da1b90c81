"""`--keras FILE`: any Keras model file, told apart by its bytes, not its name.

  .h5 (HDF5 with layer_names)     Keras 2 / tf.keras: model.save() (config inside) or
                                  save_weights() / keras.applications weights
  .keras (zip)                    Keras 3 or tf.keras 2.12-2.15 model.save()
  .weights.h5 (HDF5, layers/...)  Keras 3 / tf.keras save_weights(): needs the config

`config_path` (--keras-config) is a JSON model config (a .keras archive's
config.json, or model.to_json()) or a .keras archive whose config is used.
"""

from __future__ import annotations

import os
from typing import List, Optional

from . import ir

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def read_keras(path, config_path=None, resolution: Optional[int] = None,
               width_multiplier: Optional[float] = None,
               labels: Optional[List[str]] = None) -> ir.Network:
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(8)
    config = None
    if config_path is not None:
        from .keras_h5_reader import load_config_file
        config = load_config_file(config_path)
    hints = dict(resolution=resolution, width_multiplier=width_multiplier, labels=labels)
    if head[:4] == ZIP_MAGIC:
        from .keras_archive_reader import read_keras_archive
        return read_keras_archive(path, config=config, **hints)
    if head == HDF5_MAGIC:
        import h5py
        try:
            with h5py.File(path, "r") as f:
                keras2 = "model_weights" in f or "layer_names" in f.attrs or "layer_names0" in f.attrs
        except OSError as exc:
            raise ValueError(f"{path}: not a readable HDF5 file ({' '.join(str(exc).split())})") from None
        if keras2:
            from .keras_h5_reader import read_keras_h5
            return read_keras_h5(path, config=config, **hints)
        from .keras_archive_reader import read_weights_h5
        return read_weights_h5(path, config, **hints)
    if not head:
        raise ValueError(f"{path}: empty file")
    raise ValueError(f"{path}: not a Keras file (neither a .keras zip nor HDF5; starts with {head!r})")
