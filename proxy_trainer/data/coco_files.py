"""COCO-format detection data as COCO ships it: an instances JSON and an image directory.

``load_coco`` reads and validates both (local paths or any ``tf.io.gfile`` path such as gs://) into a
``CocoDataset`` of flat NumPy arrays (``coco_dataset``). Every problem ends in one ``DataError`` naming
the file and the entry. Handling follows the reference (Model Garden's COCO conversion and RetinaNet
parser):

- crowd boxes (``iscrowd=1``) are excluded from training targets and kept in the evaluation ground
  truth, where COCOeval treats them as "ignore" regions;
- images without annotations are kept (they are negatives in training);
- class index = ``category_id - 1``; ``num_classes`` = the largest category id (90 for COCO, whose
  ids are not contiguous: the reference head has 90 class outputs, docs/search_space.md#retinanet-head);
- boxes with zero width or height are excluded from training targets and counted in
  ``zero_size_ann_ids`` (COCO train2017 ships two: annotation ids 918 and 2206849; the reference skips
  them too); negative sizes are malformed and an error;
- boxes that extend beyond their image by at most ``box_tolerance`` pixels are clipped to it; boxes
  farther out are an error naming the annotation and the image file.

The dataset type, ``DataError``, ``PADDING_IMAGE_ID``, ``join_path`` and the reward split
(``split_image_ids``) live in ``coco_dataset`` and are re-exported here, where callers import them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from proxy_trainer.data.dataset import PADDING_IMAGE_ID, CocoDataset, DataError, join_path, split_image_ids

__all__ = [
    "PADDING_IMAGE_ID",
    "CocoDataset",
    "DataError",
    "join_path",
    "load_coco",
    "read_json",
    "split_image_ids",
]


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
