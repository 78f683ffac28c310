"""RetinaNet anchors on the feature levels L3..L7.

Layout (the contract between the head, the labeller, the losses and the
post-processing): anchors are ordered by level (min_level first), then by
row y, then by column x of the level's feature map, then by anchor index
``a = scale_index * len(aspect_ratios) + ratio_index``. The head's class
output at one location has ``A * K`` channels, channel ``a * K + k`` being
class ``k`` of anchor ``a``; its box output has ``A * 4`` channels, channel
``a * 4 + j`` being coordinate ``j`` of anchor ``a``. A reshape of a
``[B, H, W, A * D]`` level output to ``[B, H * W * A, D]`` therefore lines up
with :attr:`Anchors.boxes`.

Geometry (the reference RetinaNet, docs/proxy_recipe.md#anchors): the anchor of
scale index ``i`` at level ``l`` is a square of side
``anchor_size * 2**l * 2**(i / num_scales)`` stretched to aspect ratio
``r = width / height`` (width times ``sqrt(r)``, height divided by
``sqrt(r)``), centred on the feature cell centre ``((y + 0.5) * 2**l,
(x + 0.5) * 2**l)`` in input pixels. Boxes are ``(ymin, xmin, ymax, xmax)``
in input pixels. A level has ``ceil(S / 2**l)`` cells per side, which is
what stride-2 "same" convolutions give, so inputs that are not multiples of
``2**max_level`` (e.g. 64 px at L7) still line up with the model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

# Reference RetinaNet anchors (docs/proxy_recipe.md#anchors): 3 scales per octave,
# aspect ratios {0.5, 1, 2}, base size 3 x stride on levels 3..7.
DEFAULT_NUM_SCALES = 3
DEFAULT_ASPECT_RATIOS = (0.5, 1.0, 2.0)
DEFAULT_ANCHOR_SIZE = 3.0
DEFAULT_MIN_LEVEL = 3
DEFAULT_MAX_LEVEL = 7


class Anchors:
    """The anchors of one square (or rectangular) input size.

    The boxes are computed once with NumPy (they are constants of the
    graph) and exposed both flat and per level.

    Args:
      image_size: input size in pixels, ``S`` or ``(height, width)``.
      min_level: lowest feature level (stride ``2**min_level``).
      max_level: highest feature level.
      num_scales: intermediate scales per octave, ``2**(i / num_scales)``.
      aspect_ratios: width / height of the anchors at each scale.
      anchor_size: base anchor side in units of the level's stride.

    Raises:
      ValueError: naming the bad argument and its allowed values.
    """

    def __init__(
        self,
        image_size: int | Sequence[int],
        min_level: int = DEFAULT_MIN_LEVEL,
        max_level: int = DEFAULT_MAX_LEVEL,
        num_scales: int = DEFAULT_NUM_SCALES,
        aspect_ratios: Sequence[float] = DEFAULT_ASPECT_RATIOS,
        anchor_size: float = DEFAULT_ANCHOR_SIZE,
    ):
        if isinstance(image_size, (int, np.integer)):
            image_size = (int(image_size), int(image_size))
        height, width = (int(v) for v in image_size)
        if height < 1 or width < 1:
            raise ValueError(f"anchors: image_size {tuple(image_size)} must be positive")
        if not 1 <= min_level <= max_level:
            raise ValueError(f"anchors: levels {min_level}..{max_level} must satisfy 1 <= min_level <= max_level")
        if num_scales < 1:
            raise ValueError(f"anchors: num_scales is {num_scales}; must be >= 1")
        if not aspect_ratios or any(r <= 0 for r in aspect_ratios):
            raise ValueError(f"anchors: aspect_ratios {list(aspect_ratios)} must be non-empty and positive")
        if anchor_size <= 0:
            raise ValueError(f"anchors: anchor_size is {anchor_size}; must be > 0")
        self.image_size = (height, width)
        self.min_level = int(min_level)
        self.max_level = int(max_level)
        self.num_scales = int(num_scales)
        self.aspect_ratios = tuple(float(r) for r in aspect_ratios)
        self.anchor_size = float(anchor_size)
        self._level_boxes = {level: self._generate_level(level) for level in self.levels}
        self.boxes = np.concatenate([b.reshape(-1, 4) for b in self._level_boxes.values()], axis=0)

    @property
    def levels(self) -> tuple[int, ...]:
        """The feature levels, ascending."""
        return tuple(range(self.min_level, self.max_level + 1))

    @property
    def num_anchors_per_location(self) -> int:
        """A = num_scales * len(aspect_ratios)."""
        return self.num_scales * len(self.aspect_ratios)

    @property
    def num_anchors(self) -> int:
        """Total number of anchors over all levels."""
        return int(self.boxes.shape[0])

    def feature_shape(self, level: int) -> tuple[int, int]:
        """(height, width) of the feature map at ``level``."""
        stride = 2**level
        return math.ceil(self.image_size[0] / stride), math.ceil(self.image_size[1] / stride)

    def anchor_shapes(self, level: int) -> np.ndarray:
        """[A, 2] (height, width) of the anchors of one location at ``level``, in layout order."""
        stride = 2**level
        shapes = []
        for scale in range(self.num_scales):
            side = self.anchor_size * stride * 2 ** (scale / self.num_scales)
            for ratio in self.aspect_ratios:
                shapes.append((side / math.sqrt(ratio), side * math.sqrt(ratio)))
        return np.asarray(shapes, dtype=np.float64)

    def _generate_level(self, level: int) -> np.ndarray:
        stride = 2**level
        h, w = self.feature_shape(level)
        cy = (np.arange(h, dtype=np.float64) + 0.5) * stride
        cx = (np.arange(w, dtype=np.float64) + 0.5) * stride
        cy, cx = np.meshgrid(cy, cx, indexing="ij")  # [h, w]
        half = self.anchor_shapes(level) / 2.0  # [A, 2]
        cy, cx = cy[:, :, None], cx[:, :, None]
        boxes = np.stack([cy - half[:, 0], cx - half[:, 1], cy + half[:, 0], cx + half[:, 1]], axis=-1)
        return boxes.astype(np.float32)  # [h, w, A, 4]

    @property
    def multilevel_boxes(self) -> dict[str, np.ndarray]:
        """Level key ``"3"``.. -> [H, W, A * 4] boxes, the head's box-output layout."""
        return {str(lv): b.reshape(b.shape[0], b.shape[1], -1) for lv, b in self._level_boxes.items()}

    def level_sizes(self) -> list[int]:
        """Number of anchors at each level, in level order."""
        return [int(np.prod(b.shape[:3])) for b in self._level_boxes.values()]

    def unpack(self, flat: tf.Tensor) -> dict[str, tf.Tensor]:
        """[N, D] or [N] per-anchor values -> level key -> [H, W, A * D] (or [H, W, A]).

        Args:
          flat: per-anchor values in layout order; N must equal num_anchors.
        """
        out = {}
        parts = tf.split(flat, self.level_sizes(), axis=0)
        a = self.num_anchors_per_location
        for level, part in zip(self.levels, parts):
            h, w = self.feature_shape(level)
            depth = a if part.shape.rank == 1 else a * part.shape[-1]
            out[str(level)] = tf.reshape(part, [h, w, depth])
        return out

    def flatten(self, per_level: Mapping[str, tf.Tensor], depth: int) -> tf.Tensor:
        """Level key -> [B, H, W, A * depth] -> [B, N, depth], the order of :attr:`boxes`.

        Raises:
          ValueError: a level is missing or its spatial shape does not match.
        """
        parts = []
        for level in self.levels:
            key = str(level)
            if key not in per_level:
                raise ValueError(f"anchors: level {key!r} is missing; got levels {sorted(per_level)}")
            t = per_level[key]
            h, w = self.feature_shape(level)
            static = t.shape
            if static.rank is not None and static.rank == 4:
                if (static[1] is not None and static[1] != h) or (static[2] is not None and static[2] != w):
                    raise ValueError(
                        f"anchors: level {key} output is {static[1]}x{static[2]}, anchors expect {h}x{w} "
                        f"for input {self.image_size[0]}x{self.image_size[1]}"
                    )
            parts.append(tf.reshape(t, [tf.shape(t)[0], h * w * self.num_anchors_per_location, depth]))
        return tf.concat(parts, axis=1)
