"""COCO-format detection data as COCO ships it: an instances JSON and an image directory.

``load_coco`` reads and validates both (local paths or any ``tf.io.gfile`` path such as gs://) into a
``CocoDataset`` of flat NumPy arrays. Every problem ends in one ``DataError`` naming the file and the
entry. Handling follows the reference (Model Garden's COCO conversion and RetinaNet parser):

- crowd boxes (``iscrowd=1``) are excluded from training targets and kept in the evaluation ground
  truth, where COCOeval treats them as "ignore" regions;
- images without annotations are kept (they are negatives in training);
- class index = ``category_id - 1``; ``num_classes`` = the largest category id (90 for COCO, whose
  ids are not contiguous: SPINENET.md section 6 uses 90 class outputs);
- boxes with zero width or height are excluded from training targets and counted in
  ``zero_size_ann_ids`` (COCO train2017 ships two: annotation ids 918 and 2206849; the reference skips
  them too); negative sizes are malformed and an error;
- boxes that extend beyond their image by at most ``box_tolerance`` pixels are clipped to it; boxes
  farther out are an error naming the annotation and the image file.

``split_image_ids`` is the reward split: a deterministic held-out subset of the images.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

# image_id of the filler elements that pad the last evaluation batch (input_pipeline, coco_eval).
PADDING_IMAGE_ID = -1


class DataError(ValueError):
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


def read_json(path: str, what: str = "annotation file") -> Any:
    """Parses a JSON file (any tf.io.gfile path).

    Raises:
      DataError: missing, unreadable or malformed, naming ``path``.
    """
    if not tf.io.gfile.exists(path):
        raise DataError(f"{path}: {what} does not exist")
    if tf.io.gfile.isdir(path):
        raise DataError(f"{path}: {what} is a directory, expected a JSON file")
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            return json.loads(f.read())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: {what} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: {what} is not UTF-8 text JSON: {e.reason} at byte {e.start}") from None
    except (tf.errors.OpError, OSError) as e:
        raise DataError(f"{path}: cannot read {what}: {getattr(e, 'message', e)}") from None


def load_coco(
    annotation_file: str, image_dir: str, *, box_tolerance: float = 1.0, check_files: bool = True
) -> CocoDataset:
    """Reads and validates a COCO instances JSON and its image directory.

    Args:
      annotation_file: the instances JSON (local or tf.io.gfile path).
      image_dir: the directory the JSON's ``file_name`` entries are relative to.
      box_tolerance: pixels a box may extend beyond its image and still be clipped to it.
      check_files: check that every image file exists (one directory listing).

    Returns:
      The dataset, images in the JSON's order.

    Raises:
      DataError: naming the file and the entry, for a missing directory or file, malformed JSON, a
        missing key, a wrong type, an unknown image or category id, a duplicate id, a box with a
        negative size or outside its image, or an image file that does not exist.
    """
    if not tf.io.gfile.isdir(image_dir):
        raise DataError(f"{image_dir}: image directory does not exist")
    data = read_json(annotation_file)
    if not isinstance(data, dict):
        raise DataError(f"{annotation_file}: expected a JSON object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"{annotation_file}: missing required key {key!r} (a list); COCO instances format needed")
    categories = _read_categories(data["categories"], annotation_file)
    image_ids, file_names, heights, widths = _read_images(data["images"], annotation_file)
    if check_files:
        _check_files_exist(image_dir, file_names, annotation_file)
    ann = _read_annotations(
        data["annotations"], annotation_file, categories, image_ids, file_names, heights, widths, box_tolerance
    )
    ann_ids, rows, bboxes, areas, category_ids, is_crowd = ann
    order = np.argsort(rows, kind="stable")
    counts = np.bincount(rows, minlength=len(image_ids))
    return CocoDataset(
        annotation_file=annotation_file,
        image_dir=image_dir,
        categories=categories,
        image_ids=image_ids,
        file_names=tuple(file_names),
        heights=heights.astype(np.int32),
        widths=widths.astype(np.int32),
        row_splits=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        ann_ids=ann_ids[order],
        bboxes=bboxes[order],
        areas=areas[order],
        category_ids=category_ids[order].astype(np.int32),
        is_crowd=is_crowd[order],
        zero_size_ann_ids=tuple(int(i) for i in ann_ids[(bboxes[:, 2] == 0) | (bboxes[:, 3] == 0)]),
    )


def _read_images(images: list, src: str) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    image_ids = _int_column(images, "id", src, "images")
    file_names = _column(images, "file_name", src, "images")
    heights = _int_column(images, "height", src, "images")
    widths = _int_column(images, "width", src, "images")
    for k, name in enumerate(file_names):
        if not isinstance(name, str) or not name:
            raise DataError(f"{src}: images[{k}] (id {image_ids[k]}): 'file_name' must be a non-empty string")
    _check_unique(image_ids, src, "image")
    for k in np.flatnonzero((heights < 1) | (widths < 1))[:1]:
        raise DataError(
            f"{src}: image {file_names[k]} (id {image_ids[k]}): size {heights[k]}x{widths[k]}; allowed >= 1"
        )
    return image_ids, file_names, heights, widths


def _read_annotations(
    anns: list, src: str, categories: tuple[tuple[int, str], ...], image_ids: np.ndarray, file_names: list[str],
    heights: np.ndarray, widths: np.ndarray, box_tolerance: float,
) -> tuple[np.ndarray, ...]:  # fmt: skip
    """Validated annotation columns: ids, image rows, bboxes, areas, category ids, crowd flags."""
    ann_ids = _int_column(anns, "id", src, "annotations")
    _check_unique(ann_ids, src, "annotation")
    ann_image_ids = _int_column(anns, "image_id", src, "annotations")
    category_ids = _int_column(anns, "category_id", src, "annotations")
    bboxes = _bbox_column(anns, src)
    is_crowd = [a.get("iscrowd", 0) for a in anns]
    areas = [a.get("area", -1.0) for a in anns]
    row_of_image = {i: k for k, i in enumerate(image_ids.tolist())}
    rows = np.array([row_of_image.get(i, -1) for i in ann_image_ids.tolist()], dtype=np.int64)

    def where(j: int) -> str:
        image = f"image {file_names[rows[j]]}" if rows[j] >= 0 else f"image id {ann_image_ids[j]}"
        return f"{src}: annotation id {ann_ids[j]} ({image})"

    for j in np.flatnonzero(rows < 0)[:1]:
        raise DataError(f"{where(j)}: image_id {ann_image_ids[j]} is not in 'images'")
    known = sorted(cid for cid, _ in categories)
    for j in np.flatnonzero(~np.isin(category_ids, known))[:1]:
        raise DataError(
            f"{where(j)}: category_id {category_ids[j]} is not in 'categories' (ids {known[0]}..{known[-1]})"
        )
    for j in (j for j, c in enumerate(is_crowd) if c not in (0, 1) or isinstance(c, float)):
        raise DataError(f"{where(j)}: iscrowd {is_crowd[j]!r}; allowed 0 or 1")
    for j in (j for j, a in enumerate(areas) if not _is_number(a)):
        raise DataError(f"{where(j)}: area {areas[j]!r} is not a number")
    areas = np.array(areas, dtype=np.float64).reshape(-1)
    areas = np.where(areas < 0, bboxes[:, 2] * bboxes[:, 3], areas)
    for j in np.flatnonzero(~np.isfinite(bboxes).all(axis=1))[:1]:
        raise DataError(f"{where(j)}: bbox {bboxes[j].tolist()} is not finite")
    for j in np.flatnonzero((bboxes[:, 2] < 0) | (bboxes[:, 3] < 0))[:1]:
        raise DataError(f"{where(j)}: bbox {bboxes[j].tolist()} has a negative width or height")
    h, w, t = heights[rows].astype(np.float64), widths[rows].astype(np.float64), box_tolerance
    outside = (bboxes[:, 0] < -t) | (bboxes[:, 1] < -t)
    outside |= (bboxes[:, 0] + bboxes[:, 2] > w + t) | (bboxes[:, 1] + bboxes[:, 3] > h + t)
    for j in np.flatnonzero(outside)[:1]:
        raise DataError(
            f"{where(j)}: bbox [x, y, w, h] = {bboxes[j].tolist()} lies outside the {int(w[j])}x{int(h[j])} "
            f"(width x height) image by more than the tolerance of {t} pixels"
        )
    return ann_ids, rows, bboxes, areas, category_ids, np.array(is_crowd, dtype=bool).reshape(-1)


def split_image_ids(
    image_ids: Sequence[int], holdout_size: int, seed: int, *, source: str = "the dataset"
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The reward split: a deterministic held-out subset and the rest.

    The held-out images are the ``holdout_size`` ids with the smallest SHA-256 of ``"seed:id"``, so
    the split depends only on the ids and the seed (not on their order, nor on NumPy's RNG).

    Args:
      image_ids: distinct image ids (COCO train2017's for the paper's search).
      holdout_size: images held out for the reward (SPINENET.md section 7: 7,392).
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


def _read_categories(entries: list, src: str) -> tuple[tuple[int, str], ...]:
    ids = _int_column(entries, "id", src, "categories")
    _check_unique(ids, src, "category")
    if not ids.size:
        raise DataError(f"{src}: 'categories' is empty; at least one category is needed")
    if ids.min() < 1:
        raise DataError(f"{src}: category id {ids.min()}; allowed >= 1 (class index = category id - 1)")
    names = [str(e.get("name", cid)) for e, cid in zip(entries, ids)]
    return tuple(sorted(zip((int(i) for i in ids), names)))


def _column(entries: list, key: str, src: str, section: str) -> list:
    try:
        return [e[key] for e in entries]
    except (KeyError, TypeError):
        for k, e in enumerate(entries):
            if not isinstance(e, dict):
                raise DataError(f"{src}: {section}[{k}] is not a JSON object") from None
            if key not in e:
                ident = f" (id {e['id']})" if "id" in e else ""
                raise DataError(f"{src}: {section}[{k}]{ident} is missing required key {key!r}") from None
        raise


def _int_column(entries: list, key: str, src: str, section: str) -> np.ndarray:
    values = _column(entries, key, src, section)
    for k, v in enumerate(values):
        if not isinstance(v, int) or isinstance(v, bool):
            raise DataError(f"{src}: {section}[{k}]: {key!r} is {v!r}; expected an integer")
    return np.array(values, dtype=np.int64).reshape(-1)


def _bbox_column(anns: list, src: str) -> np.ndarray:
    values = _column(anns, "bbox", src, "annotations")
    if not values:
        return np.zeros((0, 4), np.float64)
    with contextlib.suppress(ValueError, TypeError):
        out = np.array(values, dtype=np.float64)  # numeric strings such as "1.5" are taken as numbers
        if out.ndim == 2 and out.shape[1] == 4:
            return out
    for k, b in enumerate(values):
        if not (isinstance(b, list) and len(b) == 4 and all(_is_number(v) for v in b)):
            raise DataError(
                f"{src}: annotations[{k}] (id {anns[k].get('id')}): bbox {b!r}; expected [x, y, width, height] numbers"
            )
    raise DataError(f"{src}: 'bbox' entries are not all [x, y, width, height] numbers")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_unique(ids: np.ndarray, src: str, what: str) -> None:
    uniq, counts = np.unique(ids, return_counts=True)
    if uniq.size != ids.size:
        raise DataError(f"{src}: {what} id {uniq[counts > 1][0]} appears more than once; ids must be unique")


def _check_files_exist(image_dir: str, file_names: Sequence[str], src: str) -> None:
    try:
        present = set(tf.io.gfile.listdir(image_dir))
    except tf.errors.OpError as e:
        raise DataError(f"{image_dir}: cannot list image directory: {e.message}") from None
    missing = [
        n for n in file_names if n not in present and ("/" not in n or not tf.io.gfile.exists(join_path(image_dir, n)))
    ]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DataError(f"{join_path(image_dir, missing[0])}: image file named in {src} does not exist{more}")
