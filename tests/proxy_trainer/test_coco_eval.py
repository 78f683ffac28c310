"""COCO box AP with pycocotools (proxy_trainer.evaluation.coco_eval), checked against values computed here."""

import json

import numpy as np
import pytest

from proxy_trainer.data.coco_files import PADDING_IMAGE_ID, DataError
from proxy_trainer.evaluation.coco_eval import METRIC_NAMES, CocoEvaluator, evaluate_detections

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # COCO's AP thresholds


def ground_truth():
    """Image 1: a 40x40 box (medium) and a 20x10 box (small); image 2: a 120x100 box (large); image 3 empty."""
    return {
        "images": [{"id": i, "file_name": f"{i}.jpg", "height": 200, "width": 200} for i in (1, 2, 3)],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 40, 40], "area": 1600, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [100, 100, 20, 10], "area": 200, "iscrowd": 0},
            {"id": 3, "image_id": 2, "category_id": 2, "bbox": [30, 40, 120, 100], "area": 12000, "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
    }


def as_detections(gt, score=0.9):
    """Ground-truth boxes as detections: (image ids, boxes yxyx, scores, class indices)."""
    anns = gt["annotations"]
    boxes = [[y, x, y + h, x + w] for x, y, w, h in (a["bbox"] for a in anns)]
    return [a["image_id"] for a in anns], boxes, [score] * len(anns), [a["category_id"] - 1 for a in anns]


def test_ground_truth_as_detections_scores_one():
    metrics = evaluate_detections(ground_truth(), None, *as_detections(ground_truth()))
    assert set(metrics) == set(METRIC_NAMES)
    assert metrics == pytest.approx({"AP": 1.0, "AP50": 1.0, "AP75": 1.0, "APs": 1.0, "APm": 1.0, "APl": 1.0})


def iou(a, b):
    """IoU of two (ymin, xmin, ymax, xmax) boxes, computed independently of pycocotools."""
    ih = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iw = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ih * iw
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("shift", [3.0, 7.0, 11.5, 17.0])
def test_a_shifted_box_scores_the_fraction_of_thresholds_it_passes(shift):
    gt = ground_truth()
    gt["annotations"] = gt["annotations"][:1]  # one 40x40 box in image 1
    truth = [20.0, 10.0, 60.0, 50.0]
    moved = [20.0, 10.0 + shift, 60.0, 50.0 + shift]
    overlap = iou(truth, moved)
    assert np.min(np.abs(IOU_THRESHOLDS - overlap)) > 1e-3  # no tie with a threshold
    metrics = evaluate_detections(gt, [1, 2, 3], [1], [moved], [0.8], [0])
    # one box, one detection: precision is 1 at every recall where it matches, so the AP at a
    # threshold is 1 when the IoU passes it and 0 otherwise.
    assert metrics["AP"] == pytest.approx(np.mean(overlap >= IOU_THRESHOLDS))
    assert metrics["AP50"] == pytest.approx(float(overlap >= 0.5))
    assert metrics["AP75"] == pytest.approx(float(overlap >= 0.75))
    assert metrics["APm"] == pytest.approx(metrics["AP"])
    assert metrics["APs"] == -1.0 and metrics["APl"] == -1.0  # no ground truth there: pycocotools' -1


def test_a_false_positive_on_an_empty_image_halves_precision():
    gt = ground_truth()
    gt["annotations"] = gt["annotations"][:1]
    # the higher-scored detection is on the empty image 3: at recall 1 precision is 1/2 everywhere
    metrics = evaluate_detections(gt, [1, 3], [1, 3], [[20, 10, 60, 50], [0, 0, 40, 40]], [0.5, 0.9], [0, 0])
    assert metrics["AP"] == pytest.approx(0.5) and metrics["AP50"] == pytest.approx(0.5)


def test_no_detections_gives_zero_not_a_crash():
    evaluator = CocoEvaluator(ground_truth())
    metrics = evaluator.evaluate()
    assert metrics == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0, "APs": 0.0, "APm": 0.0, "APl": 0.0}


def test_wrong_class_scores_zero_and_crowd_regions_are_ignored():
    gt = ground_truth()
    ids, boxes, scores, classes = as_detections(gt)
    assert evaluate_detections(gt, None, ids, boxes, scores, [1 - c for c in classes])["AP"] == 0.0
    gt["annotations"].append({"id": 9, "image_id": 3, "category_id": 1, "bbox": [0, 0, 100, 100], "iscrowd": 1})
    # a detection inside a crowd region is neither a true nor a false positive
    metrics = evaluate_detections(gt, None, ids + [3], boxes + [[10, 10, 50, 50]], scores + [0.99], classes + [0])
    assert metrics["AP"] == pytest.approx(1.0)


def test_add_batch_maps_input_pixels_back_and_skips_padding(capsys):
    gt = ground_truth()
    evaluator = CocoEvaluator(gt, [1, 2, 3])
    _, boxes, _, classes = as_detections(gt)
    scale = np.array([0.5, 2.0, 1.0], np.float32)  # input pixels per original pixel
    batch_boxes = np.zeros((3, 4, 4), np.float32)
    batch_boxes[0, :2] = np.array(boxes[:2]) * 0.5
    batch_boxes[1, 0] = np.array(boxes[2]) * 2.0
    batch_boxes[1, 1] = [0, 0, 50, 50]  # beyond num_detections: ignored
    batch_classes = np.array([[0, 1, -1, -1], [1, 0, -1, -1], [0, 0, 0, 0]])
    scores = np.full((3, 4), 0.7, np.float32)
    ids = np.array([1, 2, PADDING_IMAGE_ID])  # the third row is a filler element
    evaluator.add_batch(ids, batch_boxes, scores, batch_classes, scale, [[200, 200]] * 3, num_detections=[4, 1, 4])
    assert evaluator.evaluate()["AP"] == pytest.approx(1.0)
    assert capsys.readouterr().out == ""  # pycocotools' prints are captured
    assert "Average Precision" in evaluator.summary


def test_boxes_are_clipped_to_the_original_image():
    gt = {
        "images": [{"id": 1, "height": 50, "width": 60}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [30, 10, 30, 40], "area": 1200, "iscrowd": 0}
        ],
        "categories": [{"id": 1}],
    }
    evaluator = CocoEvaluator(gt)
    # in input pixels at scale 2 the box overhangs the 100x120 input: clipped back to 60 x 50
    evaluator.add_batch([1], [[[20, 60, 130, 150]]], [[0.9]], [[0]], [2.0], [[50, 60]])
    assert evaluator.evaluate()["AP"] == pytest.approx(1.0)  # unclipped, its IoU would be 0.48


def test_ground_truth_file_and_bad_inputs(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(ground_truth()))
    assert evaluate_detections(str(path), [1, 2], *as_detections(ground_truth()))["AP"] == pytest.approx(1.0)
    with pytest.raises(DataError, match=r"missing.json: ground-truth file does not exist"):
        CocoEvaluator(str(tmp_path / "missing.json"))
    with pytest.raises(DataError, match="evaluated image id 4 is not in its images"):
        CocoEvaluator(ground_truth(), [1, 4])
    with pytest.raises(ValueError, match="the 1 evaluated images hold no ground-truth box"):
        CocoEvaluator(ground_truth(), [3])
    evaluator = CocoEvaluator(ground_truth(), [1, 2])
    with pytest.raises(ValueError, match="image id 3, which is not among the 2 evaluated images"):
        evaluator.add_detections([3], [[0, 0, 1, 1]], [0.5], [0])
    with pytest.raises(ValueError, match="all must have the same length"):
        evaluator.add_detections([1, 1], [[0, 0, 1, 1]], [0.5], [0])
