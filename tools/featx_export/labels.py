"""Class names from a labels file, stored in the model (featx classify prints them).

Same rules as the runtime's featx/labels.hpp: one name per line, a trailing
'\\r' dropped, final empty lines ignored; Teachable Machine's numbered lines
("0 Cat", "1 Dog") lose their numbers when every line starts with its index.
"""

from __future__ import annotations

from typing import List


def read_labels(path: str) -> List[str]:
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: labels file is not UTF-8 ({e.reason} at byte {e.start})") from None
    labels = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    while labels and not labels[-1]:
        labels.pop()
    if not labels:
        raise ValueError(f"{path}: labels file is empty")
    if all(label.startswith(f"{i} ") for i, label in enumerate(labels)):
        labels = [label[len(f"{i} "):] for i, label in enumerate(labels)]
    return labels
