#!/usr/bin/env python3
"""featx's outputs in a notebook: numpy only, no extension module.

    featx extract -m model.featx -o photos.npy photos/
    featx index -o photos.fxi photos.npy
    featx train-probe -o probe.fxp --labels-from-dirs photos.npy
    python3 examples/vectors.py photos.npy photos.fxi probe.fxp [query.npy]

Loads the vectors with their names, memory-maps the search index
(docs/search.md, "Index file") and searches it, and reads the probe
(docs/probe.md, "The file") to predict the class of every vector: the same
numbers `featx search` and `featx classify --probe` print.
"""
import struct
import sys

import numpy as np


def load_vectors(path):
    """(N, D) float32 and the N names beside them (featx extract -o)."""
    vectors = np.load(path)
    with open(path + ".names.txt", encoding="utf-8") as f:
        names = f.read().splitlines()
    assert len(names) == len(vectors), "names and rows differ"
    return vectors, names


def load_index(path):
    """Unit vectors (count, dims), mapped in place, and their names."""
    with open(path, "rb") as f:
        head = f.read(64)
    magic, version, _, dims, stride, count, vec_at, names_at, names_len = struct.unpack_from("<8s4I4Q", head)
    if magic != b"FEATXIDX" or version != 1:
        raise ValueError(f"{path}: not a featx index version 1")
    rows = np.memmap(path, dtype="<f4", mode="r", offset=vec_at, shape=(count, stride))[:, :dims]
    with open(path, "rb") as f:
        f.seek(names_at)
        names = f.read(names_len).decode("utf-8").split("\n")[:count]
    return rows, names


def search(rows, queries, k=5):
    """Top-k rows by cosine similarity: (scores, indices), ties by index."""
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-30)
    scores = q.astype(np.float64) @ np.asarray(rows, dtype=np.float64).T
    order = np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def load_probe(path):
    """The probe's fields (docs/probe.md): names, mean, scale, W, b, logit_scale."""
    with open(path, "rb") as f:
        data = f.read()
    magic, version, kind, _, classes, dims, _, _, scale, logit_scale = struct.unpack_from("<8s4I2Q3d", data)
    if magic != b"FEATXPRB" or version != 1:
        raise ValueError(f"{path}: not a featx probe version 1")
    at, names = 64, []
    for _ in range(classes):
        (n,) = struct.unpack_from("<I", data, at)
        names.append(data[at + 4:at + 4 + n].decode("utf-8"))
        at += 4 + n
    floats = np.frombuffer(data, dtype="<f8", count=dims + classes * dims + classes, offset=at)
    mean, w, b = floats[:dims], floats[dims:dims + classes * dims].reshape(classes, dims), floats[-classes:]
    return dict(kind="mean" if kind == 1 else "logistic", names=names, mean=mean, scale=scale, w=w, b=b,
                logit_scale=logit_scale)


def predict(probe, vectors):
    """Class probabilities (N, C): softmax(logit_scale * (W x_hat + b))."""
    x = vectors.astype(np.float64)
    u = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
    z = probe["logit_scale"] * (((u - probe["mean"]) * probe["scale"]) @ probe["w"].T + probe["b"])
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def main(argv):
    if len(argv) < 4:
        print(__doc__)
        return 2
    vectors, names = load_vectors(argv[1])
    print(f"{argv[1]}: {vectors.shape[0]} vectors of {vectors.shape[1]} floats")
    rows, index_names = load_index(argv[2])
    queries = np.load(argv[4]) if len(argv) > 4 else vectors[:3]
    scores, order = search(rows, np.atleast_2d(queries))
    for qi in range(len(order)):
        print(f"query {qi}: " + ", ".join(f"{index_names[j]} ({s:.3f})" for s, j in zip(scores[qi], order[qi])))
    probe = load_probe(argv[3])
    p = predict(probe, vectors)
    for name, row in list(zip(names, p))[:5]:
        print(f"{name}: {probe['names'][int(row.argmax())]} ({row.max():.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
