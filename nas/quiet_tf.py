"""Imports TensorFlow without its C++ start-up chatter on the user's terminal.

TensorFlow 2.21 logs from C++ before absl logging is initialised, so
``TF_CPP_MIN_LOG_LEVEL`` cannot hide it. The import runs with stderr (file
descriptor 2) pointed at /dev/null; Python exceptions still propagate.
"""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    """Imports tensorflow (once) with C++ stderr output suppressed."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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
