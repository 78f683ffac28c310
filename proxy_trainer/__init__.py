"""Proxy training: one architecture in, its reward (COCO box AP) out.

Four concerns, one subpackage each:

- ``data``: COCO-format files (``coco_files``), the in-memory dataset and its
  reward split (``dataset``), the generated synthetic dataset (``synthetic``),
  the one-time preprocessing cache (``cache``, published atomically by
  ``publish``), and the tf.data input pipeline (``pipeline``).
- ``detector``: the model: its config (``config``: ``ModelConfig`` and the
  ``LayerSpec`` every layer shares), the SpineNet backbone, the RetinaNet head
  and model, anchors and their labelling, box coding, losses and
  post-processing.
- ``training``: the trainer (``trainer.train_and_evaluate``), its config, the
  learning-rate schedule, the runtime (precision, XLA, seeds) and the trial
  file that makes a rerun resume only the same trial.
- ``evaluation``: box AP with pycocotools (``coco_eval``).

Imports go one way: ``training`` uses the other three; ``detector`` and
``data`` do not import each other; ``evaluation`` uses ``data`` only
(tests/test_layering.py checks it).
"""
