"""Imports TensorFlow without its C++ start-up chatter on the user's terminal.

TensorFlow 2.21 logs from C++ before absl logging is initialised, so
``TF_CPP_MIN_LOG_LEVEL`` cannot hide it. The import runs with stderr (file
descriptor 2) pointed at /dev/null; Python exceptions still propagate.

After the import, ``TF_CPP_MIN_LOG_LEVEL`` defaults to 3: TensorFlow 2.21
logs harmless C++ "errors" while it runs (a tf.data NodeDef attribute its
own runtime does not know, oneDNN falling back to Eigen for int32), and a
real failure reaches the user as a Python exception anyway. Set
``TF_CPP_MIN_LOG_LEVEL=0`` to see everything.
"""

from __future__ import annotations

import os
import sys

DEFAULT_TF_LOG_LEVEL = "3"


def import_tensorflow_quietly() -> None:
    """Imports tensorflow (once) with C++ stderr output suppressed."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_TF_LOG_LEVEL)
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow

        # Device discovery logs too (e.g. cuInit failing on a machine without a GPU).
        tensorflow.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
