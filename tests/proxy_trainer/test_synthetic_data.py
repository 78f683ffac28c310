"""The generated COCO-format shapes dataset (proxy_trainer.data.synthetic)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from pycocotools import mask as mask_utils

from proxy_trainer.data import synthetic as synthetic_coco
from proxy_trainer.data.coco_files import load_coco
from proxy_trainer.data.config import SyntheticConfig
from proxy_trainer.data.synthetic import COLOURS, ensure_synthetic_coco
from proxy_trainer.evaluation.coco_eval import evaluate_detections

# pycocotools' RLE decoder predates NumPy 2's copy keyword; harmless here.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

CONFIG = SyntheticConfig(num_images=48, num_classes=4, image_size=(64, 96), seed=3)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return ensure_synthetic_coco(str(tmp_path_factory.mktemp("synthetic")), CONFIG)


def test_files_are_coco_format_and_load(generated):
    data = json.loads(open(generated.annotation_file).read())
    assert set(data) == {"info", "licenses", "images", "annotations", "categories"}
    assert [c["id"] for c in data["categories"]] == [1, 2, 3, 4]
    ds = load_coco(generated.annotation_file, generated.image_dir)
    assert ds.num_images == 48 and ds.num_classes == 4
    assert set(ds.category_ids.tolist()) == {1, 2, 3, 4}
    counts = np.diff(ds.row_splits)
    assert counts.max() <= CONFIG.max_objects and counts.mean() > 1.5
    for image in data["images"][:6]:
        pixels = tf.io.decode_jpeg(tf.io.read_file(os.path.join(generated.image_dir, image["file_name"])))
        assert pixels.shape == (image["height"], image["width"], 3)
        assert 64 <= image["height"] <= 96 and 64 <= image["width"] <= 96


def test_boxes_are_tight_around_the_visible_shape_of_the_class_colour(generated):
    data = json.loads(open(generated.annotation_file).read())
    by_image = {im["id"]: im for im in data["images"]}
    for ann in data["annotations"][:40]:
        mask = mask_utils.decode(ann["segmentation"]).astype(bool)
        ys, xs = np.nonzero(mask)
        x, y, w, h = ann["bbox"]
        assert (x, y, w, h) == (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
        assert ann["area"] == mask.sum()
        image = by_image[ann["image_id"]]
        pixels = tf.io.decode_jpeg(tf.io.read_file(os.path.join(generated.image_dir, image["file_name"]))).numpy()
        mean_colour = pixels[mask].mean(axis=0)
        distances = np.linalg.norm(COLOURS[: CONFIG.num_classes] - mean_colour, axis=1)
        assert np.argmin(distances) == ann["category_id"] - 1  # colour identifies the class


def test_ground_truth_scores_ap_one_with_pycocotools(generated):
    data = json.loads(open(generated.annotation_file).read())
    anns = data["annotations"]
    boxes = [[y, x, y + h, x + w] for x, y, w, h in (a["bbox"] for a in anns)]
    metrics = evaluate_detections(
        data, None, [a["image_id"] for a in anns], boxes, [1.0] * len(anns), [a["category_id"] - 1 for a in anns]
    )
    assert metrics["AP"] == pytest.approx(1.0)


def test_generation_is_deterministic_and_depends_on_the_seed(generated, tmp_path):
    again = ensure_synthetic_coco(str(tmp_path / "a"), CONFIG)
    assert open(again.annotation_file).read() == open(generated.annotation_file).read()
    name = sorted(os.listdir(again.image_dir))[5]
    assert (
        open(os.path.join(again.image_dir, name), "rb").read()
        == open(os.path.join(generated.image_dir, name), "rb").read()
    )
    other = ensure_synthetic_coco(str(tmp_path / "b"), SyntheticConfig(num_images=48, image_size=(64, 96), seed=4))
    assert open(other.annotation_file).read() != open(generated.annotation_file).read()


def test_a_complete_dataset_is_reused(generated):
    stamp = os.stat(generated.annotation_file).st_mtime_ns
    again = ensure_synthetic_coco(os.path.dirname(generated.directory), CONFIG)
    assert again == generated and os.stat(again.annotation_file).st_mtime_ns == stamp


def test_an_interrupted_generation_leaves_nothing_that_looks_valid(tmp_path, monkeypatch):
    real = synthetic_coco.generate_synthetic_coco

    def interrupted(directory, config):
        real(directory, config)
        raise KeyboardInterrupt  # after every file is written, before the manifest

    monkeypatch.setattr(synthetic_coco, "generate_synthetic_coco", interrupted)
    config = SyntheticConfig(num_images=4, image_size=(32, 32))
    with pytest.raises(KeyboardInterrupt):
        ensure_synthetic_coco(str(tmp_path), config)
    assert os.listdir(tmp_path) == []  # the staging directory is gone, no final directory exists
    monkeypatch.setattr(synthetic_coco, "generate_synthetic_coco", real)
    # a directory at the final name without a manifest (e.g. a killed older run) is replaced
    stale = tmp_path / f"synthetic-{synthetic_coco.synthetic_key(config)}"
    stale.mkdir()
    (stale / "instances.json").write_text("{}")
    result = ensure_synthetic_coco(str(tmp_path), config)
    assert len(load_coco(result.annotation_file, result.image_dir).image_ids) == 4
    assert os.listdir(tmp_path) == [stale.name]


def test_invalid_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"data.synthetic.num_classes: 7; allowed 1..6"):
        ensure_synthetic_coco(str(tmp_path), SyntheticConfig(num_classes=7))
