"""A COCO-format detection dataset in memory, and the reward split of its images.

``CocoDataset`` holds the images and box annotations of an instances JSON as flat NumPy arrays (read
and validated by ``coco_data.load_coco``) and derives what training and evaluation need from them: a
subset of the images, the training targets and the COCO-format ground truth. ``split_image_ids`` is
the reward split: a deterministic held-out subset of the image ids, which ``CocoDataset.subset`` then
turns into the training and held-out datasets.

``DataError`` is the one error of bad data, here and in ``coco_data``; its message names the file
and the entry.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from search_space.errors import UserError

# image_id of the filler elements that pad the last evaluation batch (input_pipeline, coco_eval).
PADDING_IMAGE_ID = -1


class DataError(UserError, ValueError):
    """The data is missing or invalid; the message names the file and the entry."""


def join_path(directory: str, name: str) -> str:
    """``directory/name`` for local paths and URLs such as gs://bucket/dir alike."""
    return directory.rstrip("/") + "/" + name


@dataclasses.dataclass(frozen=True, eq=False)
class CocoDataset:
    """Images and their box annotations, as flat arrays.

    Annotations of image ``i`` are rows ``row_splits[i]:row_splits[i + 1]`` of the annotation arrays.
    Boxes are kept exactly as shipped (``bboxes``: x, y, width, height in original pixels).

    Attributes:
      annotation_file: the instances JSON it was read from.
      image_dir: the directory the ``file_names`` are relative to.
      categories: (category id, name) pairs, sorted by id.
      image_ids: int64 [N].
      file_names: N names relative to ``image_dir``.
      heights: int32 [N] image heights from the JSON.
      widths: int32 [N].
      row_splits: int64 [N + 1].
      ann_ids: int64 [M].
      bboxes: float64 [M, 4] (x, y, width, height).
      areas: float64 [M] (the JSON's ``area``, or width * height when absent).
      category_ids: int32 [M].
      is_crowd: bool [M].
      zero_size_ann_ids: annotations excluded from training for a zero width or height.
    """

    annotation_file: str
    image_dir: str
    categories: tuple[tuple[int, str], ...]
    image_ids: np.ndarray
    file_names: tuple[str, ...]
    heights: np.ndarray
    widths: np.ndarray
    row_splits: np.ndarray
    ann_ids: np.ndarray
    bboxes: np.ndarray
    areas: np.ndarray
    category_ids: np.ndarray
    is_crowd: np.ndarray
    zero_size_ann_ids: tuple[int, ...] = ()

    @property
    def num_images(self) -> int:
        return int(self.image_ids.shape[0])

    @property
    def num_classes(self) -> int:
        """Class outputs: the largest category id (class index = category id - 1)."""
        return max(cid for cid, _ in self.categories)

    def image_paths(self) -> list[str]:
        """Full paths of the images, in order."""
        return [join_path(self.image_dir, name) for name in self.file_names]

    def subset(self, image_ids: Iterable[int]) -> CocoDataset:
        """The dataset restricted to ``image_ids``, in that order.

        Raises:
          DataError: an id that is not in the dataset.
        """
        index = {int(i): k for k, i in enumerate(self.image_ids)}
        try:
            rows = np.array([index[int(i)] for i in image_ids], dtype=np.int64)
        except KeyError as e:
            raise DataError(f"{self.annotation_file}: image id {e.args[0]} is not in the dataset") from None
        starts, ends = self.row_splits[rows], self.row_splits[rows + 1]
        counts = ends - starts
        ann_rows = np.concatenate([np.arange(s, t) for s, t in zip(starts, ends)] + [np.zeros(0, np.int64)])
        kept = set(self.ann_ids[ann_rows].tolist())
        return dataclasses.replace(
            self,
            image_ids=self.image_ids[rows],
            file_names=tuple(self.file_names[r] for r in rows),
            heights=self.heights[rows],
            widths=self.widths[rows],
            row_splits=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            ann_ids=self.ann_ids[ann_rows],
            bboxes=self.bboxes[ann_rows],
            areas=self.areas[ann_rows],
            category_ids=self.category_ids[ann_rows],
            is_crowd=self.is_crowd[ann_rows],
            zero_size_ann_ids=tuple(i for i in self.zero_size_ann_ids if i in kept),
        )

    def training_targets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes that train the detector: not crowd, not zero-size, clipped to the image.

        Returns:
          boxes: float32 [K, 4] (ymin, xmin, ymax, xmax) in original pixels.
          classes: int32 [K] class indices (category id - 1).
          row_splits: int64 [N + 1] rows of image i.
        """
        image_of_ann = np.repeat(np.arange(self.num_images), np.diff(self.row_splits))
        h = self.heights[image_of_ann].astype(np.float64)
        w = self.widths[image_of_ann].astype(np.float64)
        x0, y0 = self.bboxes[:, 0], self.bboxes[:, 1]
        x1, y1 = x0 + self.bboxes[:, 2], y0 + self.bboxes[:, 3]
        boxes = np.stack([np.clip(y0, 0, h), np.clip(x0, 0, w), np.clip(y1, 0, h), np.clip(x1, 0, w)], axis=1)
        keep = ~self.is_crowd & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        counts = np.bincount(image_of_ann[keep], minlength=self.num_images)
        splits = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return boxes[keep].astype(np.float32), (self.category_ids[keep] - 1).astype(np.int32), splits

    def ground_truth(self) -> dict[str, Any]:
        """The COCO-format ground truth of these images (for COCOeval), boxes as shipped."""
        images = [
            {"id": int(i), "file_name": f, "height": int(h), "width": int(w)}
            for i, f, h, w in zip(self.image_ids, self.file_names, self.heights, self.widths)
        ]
        image_of_ann = np.repeat(self.image_ids, np.diff(self.row_splits))
        keys = ("id", "image_id", "category_id", "bbox", "area", "iscrowd")
        columns = (self.ann_ids, image_of_ann, self.category_ids, self.bboxes, self.areas, self.is_crowd.astype(int))
        annotations = [dict(zip(keys, row)) for row in zip(*(c.tolist() for c in columns))]
        categories = [{"id": cid, "name": name} for cid, name in self.categories]
        return {"images": images, "annotations": annotations, "categories": categories}


def split_image_ids(
    image_ids: Sequence[int], holdout_size: int, seed: int, *, source: str = "the dataset"
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The reward split: a deterministic held-out subset and the rest.

    The held-out images are the ``holdout_size`` ids with the smallest SHA-256 of ``"seed:id"``, so
    the split depends only on the ids and the seed (not on their order, nor on NumPy's RNG).

    Args:
      image_ids: distinct image ids (COCO train2017's for the paper's search).
      holdout_size: images held out for the reward (docs/proxy_recipe.md#reward-split: 7,392).
      seed: the split seed.
      source: names the data in error messages (e.g. the annotation file).

    Returns:
      (train ids, held-out ids), each sorted ascending; disjoint, together all ids.

    Raises:
      DataError: duplicate ids, or a held-out size that leaves no training image or none held out.
    """
    ids = [int(i) for i in image_ids]
    if len(set(ids)) != len(ids):
        raise DataError(f"{source}: image ids are not distinct; cannot split")
    if not 1 <= holdout_size <= len(ids) - 1:
        raise DataError(
            f"{source}: a held-out split of {holdout_size} images is larger than the data allows "
            f"({len(ids)} images); allowed 1..{max(len(ids) - 1, 0)}"
        )
    rank = sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).digest())
    holdout = set(rank[:holdout_size])
    return tuple(sorted(i for i in ids if i not in holdout)), tuple(sorted(holdout))
