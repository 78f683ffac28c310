"""Box AP of detections with pycocotools' COCOeval: the search's reward.

``CocoEvaluator`` takes the COCO-format ground truth of the evaluated images (a dict or a JSON path)
and collects detections batch by batch, either in original-image pixels (``add_detections``) or as the
model emits them in input pixels (``add_batch``, which maps them back with the element's
``image_scale`` and clips them to the original image). ``evaluate()`` runs COCOeval (bbox, the
official 101-point AP over IoU 0.50:0.05:0.95, up to 100 detections per image) with its printing
captured, and returns AP, AP50, AP75, APs, APm, APl as fractions in [0, 1]. As in pycocotools, an
area range without any ground-truth box gets -1.0. No detections at all gives 0.0, not an error.

Class index c of the model is category id c + 1 (``coco_data``); detections of ids that are not
categories of the ground truth are ignored by COCOeval, as in the official evaluation.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from proxy_trainer.data.coco_files import PADDING_IMAGE_ID, DataError, read_json

METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")


class CocoEvaluator:
    """Accumulates detections of a fixed set of images and computes COCO box AP."""

    def __init__(self, ground_truth: dict[str, Any] | str, image_ids: Sequence[int] | None = None) -> None:
        """Prepares the ground truth.

        Args:
          ground_truth: COCO-format dict (images, annotations, categories) or a path to one.
          image_ids: the evaluated images (default: all images of the ground truth).

        Raises:
          DataError: a malformed ground truth, or an evaluated image id that it does not hold.
          ValueError: the evaluated images hold no (non-crowd) ground-truth box, so AP is undefined.
        """
        source = ground_truth if isinstance(ground_truth, str) else "ground truth"
        data = read_json(ground_truth, "ground-truth file") if isinstance(ground_truth, str) else ground_truth
        if not isinstance(data, dict) or any(
            not isinstance(data.get(k), list) for k in ("images", "annotations", "categories")
        ):
            raise DataError(f"{source}: expected a COCO-format object with lists images, annotations, categories")
        data = copy.copy(data)
        data["annotations"] = [_complete_annotation(a) for a in data["annotations"]]
        known = {int(im["id"]) for im in data["images"]}
        ids = sorted(known) if image_ids is None else sorted({int(i) for i in image_ids})
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise DataError(f"{source}: evaluated image id {unknown[0]} is not in its images ({len(unknown)} unknown)")
        id_set = set(ids)
        if not any(a["image_id"] in id_set and not a["iscrowd"] for a in data["annotations"]):
            raise ValueError(f"{source}: the {len(ids)} evaluated images hold no ground-truth box; AP is undefined")
        self._data = data
        self._image_ids = ids
        self._id_set = id_set
        with contextlib.redirect_stdout(io.StringIO()):
            self._coco_gt = COCO()
            self._coco_gt.dataset = data
            self._coco_gt.createIndex()
        self._chunks: list[tuple[np.ndarray, ...]] = []
        self.summary = ""

    @property
    def image_ids(self) -> list[int]:
        return list(self._image_ids)

    def reset(self) -> None:
        """Drops the detections collected so far."""
        self._chunks = []

    def add_detections(self, image_ids: Any, boxes: Any, scores: Any, classes: Any) -> None:
        """Adds detections in original-image pixels.

        Args:
          image_ids: int [n].
          boxes: float [n, 4] (ymin, xmin, ymax, xmax) in pixels of the original image.
          scores: float [n].
          classes: int [n] class indices (category id - 1).

        Raises:
          ValueError: mismatched lengths, or an image id outside the evaluated images.
        """
        image_ids = np.asarray(image_ids, np.int64).reshape(-1)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        classes = np.asarray(classes, np.int64).reshape(-1)
        if not len(image_ids) == len(boxes) == len(scores) == len(classes):
            raise ValueError(
                f"detections: image_ids {len(image_ids)}, boxes {len(boxes)}, scores {len(scores)}, "
                f"classes {len(classes)}; all must have the same length"
            )
        unknown = [int(i) for i in np.unique(image_ids) if int(i) not in self._id_set]
        if unknown:
            raise ValueError(
                f"detections for image id {unknown[0]}, which is not among the {len(self._id_set)} evaluated images"
            )
        self._chunks.append((image_ids, boxes, scores, classes))

    def add_batch(
        self, image_ids: Any, boxes: Any, scores: Any, classes: Any, image_scale: Any, original_size: Any,
        num_detections: Any = None,
    ) -> None:  # fmt: skip
        """Adds a batch of detections in input pixels, as the model emits them.

        Args:
          image_ids: int [B] (``PADDING_IMAGE_ID`` rows are skipped).
          boxes: float [B, K, 4] (ymin, xmin, ymax, xmax) in input pixels.
          scores: float [B, K].
          classes: int [B, K] class indices; negative ones are padding and skipped.
          image_scale: float [B], the pipeline element's input pixels per original pixel.
          original_size: int [B, 2] (height, width), to clip boxes to the original image.
          num_detections: int [B] valid detections per row (default: all K).
        """
        image_ids = np.asarray(image_ids, np.int64).reshape(-1)
        boxes = np.asarray(boxes, np.float64)
        scores, classes = np.asarray(scores, np.float64), np.asarray(classes, np.int64)
        batch, k = scores.shape
        valid = np.arange(k)[None, :] < (
            np.full(batch, k) if num_detections is None else np.asarray(num_detections)[:, None]
        )
        valid &= (classes >= 0) & (image_ids != PADDING_IMAGE_ID)[:, None]
        size = np.asarray(original_size, np.float64).reshape(batch, 1, 2)
        limit = np.concatenate([size, size], axis=-1)
        scale = np.asarray(image_scale, np.float64).reshape(batch, 1, 1)
        original = np.clip(boxes / np.where(scale > 0, scale, 1.0), 0.0, limit)  # filler rows have scale 0
        rows = np.broadcast_to(image_ids[:, None], (batch, k))
        self.add_detections(rows[valid], original[valid], scores[valid], classes[valid])

    def evaluate(self) -> dict[str, float]:
        """COCO box metrics of the detections added so far (pycocotools' output in ``summary``)."""
        if self._chunks:
            image_ids, boxes, scores, classes = (np.concatenate(parts) for parts in zip(*self._chunks))
        else:
            image_ids, boxes, scores, classes = (
                np.zeros(0, np.int64),
                np.zeros((0, 4)),
                np.zeros(0),
                np.zeros(0, np.int64),
            )
        heights, widths = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        annotations = [
            {
                "id": n + 1,
                "image_id": int(i),
                "category_id": int(c) + 1,
                "bbox": [float(b[1]), float(b[0]), float(w), float(h)],
                "area": float(w * h),
                "score": float(s),
                "iscrowd": 0,
            }  # fmt: skip
            for n, (i, b, s, c, h, w) in enumerate(zip(image_ids, boxes, scores, classes, heights, widths))
        ]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            coco_dt = COCO()
            coco_dt.dataset = {
                "images": self._data["images"],
                "categories": self._data["categories"],
                "annotations": annotations,
            }
            coco_dt.createIndex()
            evaluator = COCOeval(self._coco_gt, coco_dt, iouType="bbox")
            evaluator.params.imgIds = self._image_ids
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        self.summary = out.getvalue()
        return {name: float(v) for name, v in zip(METRIC_NAMES, evaluator.stats[:6])}


def evaluate_detections(
    ground_truth: dict[str, Any] | str, image_ids: Sequence[int] | None, det_image_ids: Any, boxes: Any, scores: Any,
    classes: Any,
) -> dict[str, float]:  # fmt: skip
    """One-shot ``CocoEvaluator``: detections in original pixels -> AP, AP50, AP75, APs, APm, APl."""
    evaluator = CocoEvaluator(ground_truth, image_ids)
    evaluator.add_detections(det_image_ids, boxes, scores, classes)
    return evaluator.evaluate()


def _complete_annotation(annotation: dict[str, Any]) -> dict[str, Any]:
    """Fills the fields COCOeval reads that a hand-made ground truth may lack."""
    if "area" in annotation and "iscrowd" in annotation:
        return annotation
    out = dict(annotation)
    out.setdefault("iscrowd", 0)
    out.setdefault("area", float(out["bbox"][2]) * float(out["bbox"][3]))
    return out
