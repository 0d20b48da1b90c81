"""featx exporter: readers for model sources, the .featx writer, ONNX export, goldens.

The flatc-generated Python code imports itself as the top-level package
`featx.fb`, so its parent directory has to be on sys.path before any module
here touches the schema.
"""

import os
import sys

_GENERATED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_generated")
if _GENERATED not in sys.path:
    sys.path.insert(0, _GENERATED)
