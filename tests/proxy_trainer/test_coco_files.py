"""COCO-format loading, validation and the reward split (proxy_trainer.data.coco_files)."""

import json

import numpy as np
import pytest
import tensorflow as tf

from proxy_trainer.data.coco_files import DataError, load_coco, split_image_ids


def write_jpeg(path, height, width, value=128):
    pixels = np.full((height, width, 3), value, np.uint8)
    tf.io.write_file(str(path), tf.io.encode_jpeg(pixels))


def small_coco():
    """Three images: one with a normal, a crowd, a zero-size and a slightly-out box; one empty."""
    return {
        "images": [
            {"id": 7, "file_name": "a.jpg", "height": 48, "width": 64},
            {"id": 3, "file_name": "b.jpg", "height": 64, "width": 40},
            {"id": 11, "file_name": "c.jpg", "height": 32, "width": 32},
        ],
        "annotations": [
            {"id": 100, "image_id": 7, "category_id": 90, "bbox": [10, 5, 20, 30], "area": 600, "iscrowd": 0},
            {"id": 101, "image_id": 7, "category_id": 1, "bbox": [0, 0, 64, 48], "area": 3000, "iscrowd": 1},
            {"id": 102, "image_id": 3, "category_id": 3, "bbox": [5, 5, 10, 0], "area": 0, "iscrowd": 0},
            {"id": 103, "image_id": 3, "category_id": 3, "bbox": [30.0, -0.5, 10.6, 20]},
        ],
        "categories": [{"id": 1, "name": "one"}, {"id": 3, "name": "three"}, {"id": 90, "name": "ninety"}],
    }


def write_coco(directory, data, images=None):
    """Writes the JSON and a JPEG per entry of ``images`` (default: the JSON's images)."""
    image_dir = directory / "images"
    image_dir.mkdir(exist_ok=True)
    for im in data["images"] if images is None else images:
        write_jpeg(image_dir / im["file_name"], im["height"], im["width"])
    annotation_file = directory / "instances.json"
    annotation_file.write_text(json.dumps(data))
    return str(annotation_file), str(image_dir)


def test_loads_coco_format_as_the_reference_handles_it(tmp_path):
    ds = load_coco(*write_coco(tmp_path, small_coco()))
    assert ds.num_images == 3 and list(ds.image_ids) == [7, 3, 11]
    assert ds.num_classes == 90  # the largest category id, as COCO's 90 outputs
    assert ds.zero_size_ann_ids == (102,)
    boxes, classes, splits = ds.training_targets()
    # crowd (101) and zero-size (102) boxes are not targets; the empty image (11) is kept
    assert list(splits) == [0, 1, 2, 2]
    assert list(classes) == [89, 2]  # class index = category id - 1
    np.testing.assert_allclose(boxes[0], [5, 10, 35, 30])
    np.testing.assert_allclose(boxes[1], [0, 30, 19.5, 40])  # clipped: y -0.5 -> 0, x 40.6 -> 40
    gt = ds.ground_truth()
    assert {a["id"] for a in gt["annotations"]} == {100, 101, 102, 103}  # evaluation keeps all, as shipped
    by_id = {a["id"]: a for a in gt["annotations"]}
    assert by_id[101]["iscrowd"] == 1 and by_id[103]["bbox"] == [30.0, -0.5, 10.6, 20.0]
    assert by_id[103]["area"] == pytest.approx(10.6 * 20)  # missing area -> width * height


def test_subset_keeps_annotations_with_their_images(tmp_path):
    ds = load_coco(*write_coco(tmp_path, small_coco()))
    sub = ds.subset([3, 7])
    assert list(sub.image_ids) == [3, 7] and sub.file_names == ("b.jpg", "a.jpg")
    assert list(sub.row_splits) == [0, 2, 4] and list(sub.ann_ids) == [102, 103, 100, 101]
    assert sub.zero_size_ann_ids == (102,)
    assert ds.subset([11]).ann_ids.size == 0
    with pytest.raises(DataError, match="image id 5 is not in the dataset"):
        ds.subset([5])


def _broken(change):
    data = small_coco()
    change(data)
    return data


BAD_DATA = [
    (lambda d: d.pop("annotations"), r"instances.json: missing required key 'annotations'"),
    (lambda d: d["images"][1].pop("file_name"), r"images\[1\] \(id 3\) is missing required key 'file_name'"),
    (lambda d: d["images"][0].update(height=0), r"image a.jpg \(id 7\): size 0x64"),
    (lambda d: d["images"][2].update(id=7), r"image id 7 appears more than once"),
    (lambda d: d["annotations"][0].update(image_id=99), r"annotation id 100 \(image id 99\): image_id 99 is not in"),
    (
        lambda d: d["annotations"][0].update(category_id=2),
        r"annotation id 100 \(image a.jpg\): category_id 2 is not in",
    ),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), r"annotations\[0\] \(id 100\): bbox \[1, 2, 3\]; expected"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, -3, 4]), r"annotation id 100 \(image a.jpg\).*negative width"),
    (
        lambda d: d["annotations"][0].update(bbox=[50, 5, 20, 10]),
        r"annotation id 100 \(image a.jpg\).*outside the 64x48",
    ),
    (lambda d: d["annotations"][0].update(id="x"), r"annotations\[0\]: 'id' is 'x'; expected an integer"),
    (lambda d: d["annotations"][1].update(iscrowd=2), r"annotation id 101 \(image a.jpg\): iscrowd 2; allowed 0 or 1"),
    (lambda d: d.update(categories=[{"id": 0}]), r"category id 0; allowed >= 1"),
]


@pytest.mark.parametrize("change, message", BAD_DATA)
def test_bad_annotations_fail_with_one_clear_message(tmp_path, change, message):
    with pytest.raises(DataError, match=message):
        load_coco(*write_coco(tmp_path, _broken(change), images=small_coco()["images"]))


def test_box_tolerance_decides_between_clipping_and_error(tmp_path):
    data = _broken(lambda d: d["annotations"][0].update(bbox=[50, 5, 16.5, 10]))  # 2.5 px beyond x = 64
    files = write_coco(tmp_path, data)
    with pytest.raises(DataError, match="tolerance of 1.0 pixels"):
        load_coco(*files)
    ds = load_coco(*files, box_tolerance=3.0)
    assert ds.training_targets()[0][0, 3] == 64


def test_missing_files_and_malformed_json_name_the_file(tmp_path):
    annotation_file, image_dir = write_coco(tmp_path, small_coco())
    with pytest.raises(DataError, match=r"nowhere: image directory does not exist"):
        load_coco(annotation_file, str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"none.json: annotation file does not exist"):
        load_coco(str(tmp_path / "none.json"), image_dir)
    (tmp_path / "bad.json").write_text('{"images": [1, 2,, 3]}')
    with pytest.raises(
        DataError, match=r"bad.json: annotation file is not valid JSON: Expecting value at line 1 column 18"
    ):
        load_coco(str(tmp_path / "bad.json"), image_dir)
    (tmp_path / "images" / "b.jpg").unlink()
    with pytest.raises(DataError, match=r"images/b.jpg: image file named in .*instances.json does not exist"):
        load_coco(annotation_file, image_dir)


def test_split_is_deterministic_disjoint_and_complete():
    ids = list(range(1000, 1200))
    train, holdout = split_image_ids(ids, 30, seed=0)
    assert len(holdout) == 30 and len(train) == 170
    assert not set(train) & set(holdout) and set(train) | set(holdout) == set(ids)
    assert list(holdout) == sorted(holdout) and list(train) == sorted(train)
    assert split_image_ids(list(reversed(ids)), 30, seed=0) == (train, holdout)  # order does not matter
    assert split_image_ids(ids, 30, seed=1)[1] != holdout
    # a larger holdout contains the smaller one (same ranking), so growing it never reshuffles
    assert set(holdout) <= set(split_image_ids(ids, 60, seed=0)[1])


def test_split_of_coco_train2017_sizes():
    # docs/proxy_recipe.md#reward-split: 7,392 of train2017's 118,287 images held out, 110,895 train the proxy.
    train, holdout = split_image_ids(range(118287), 7392, seed=0)
    assert (len(train), len(holdout)) == (110895, 7392)


@pytest.mark.parametrize("size", [0, 10, 11])
def test_split_larger_than_the_data_is_an_error(size):
    with pytest.raises(DataError, match=rf"instances.json: a held-out split of {size} images .* allowed 1..9"):
        split_image_ids(range(10), size, seed=0, source="instances.json")
