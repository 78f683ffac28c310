"""The tf.data input pipeline (proxy_trainer.data.pipeline): elements, augmentation, determinism."""

import numpy as np
import pytest
import tensorflow as tf

from proxy_trainer.data.coco_files import PADDING_IMAGE_ID, load_coco
from proxy_trainer.data.config import DataConfig, SyntheticConfig
from proxy_trainer.data.pipeline import MEAN_RGB, STDDEV_RGB, prepare_data, preprocess
from proxy_trainer.data.synthetic import ensure_synthetic_coco

SIZE = 96
SYNTHETIC = SyntheticConfig(num_images=20, image_size=(64, 112), seed=2)


def data_config(cache_dir, **kw):
    return DataConfig(
        source="synthetic", synthetic=SYNTHETIC, holdout_size=7, cache_dir=str(cache_dir), max_boxes=6, **kw
    )


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module", params=[True, False], ids=["cache", "files"])
def data(request, cache_dir):
    return prepare_data(data_config(cache_dir, use_cache=request.param), SIZE)


def test_train_batches_have_the_documented_shapes_and_types(data):
    assert (data.num_classes, data.num_train_images, data.num_eval_images) == (4, 13, 7)
    assert (data.cache is not None) == data.config.use_cache
    batch = next(iter(data.train_dataset(3, seed=0)))
    expected = {
        "image": ([3, SIZE, SIZE, 3], tf.float32),
        "boxes": ([3, 6, 4], tf.float32),
        "classes": ([3, 6], tf.int32),
        "num_boxes": ([3], tf.int32),
        "image_id": ([3], tf.int64),
        "image_scale": ([3], tf.float32),
        "original_size": ([3, 2], tf.int32),
    }
    assert {k: (v.shape.as_list(), v.dtype) for k, v in batch.items()} == expected
    for k in range(3):
        n = int(batch["num_boxes"][k])
        assert np.all(batch["classes"][k, n:] == -1) and np.all(batch["boxes"][k, n:] == 0)
        assert np.all((batch["classes"][k, :n] >= 0) & (batch["classes"][k, :n] < 4))
        boxes = batch["boxes"][k, :n].numpy()
        assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
        assert boxes.min() >= 0 and boxes.max() <= SIZE


def test_eval_elements_are_unaugmented_in_order_and_padded_to_the_batch(data):
    synthetic = ensure_synthetic_coco(data.config.cache_dir, SYNTHETIC)
    dataset = load_coco(synthetic.annotation_file, synthetic.image_dir)
    boxes, classes, splits = dataset.training_targets()
    row = {int(i): k for k, i in enumerate(dataset.image_ids)}
    batches = list(data.eval_dataset(4))
    assert len(batches) == 2 and all(b["image"].shape[0] == 4 for b in batches)
    ids = np.concatenate([b["image_id"].numpy() for b in batches])
    assert list(ids[:7]) == list(data.eval_image_ids) and ids[7] == PADDING_IMAGE_ID
    last = {k: v[3].numpy() for k, v in batches[1].items()}
    assert last["num_boxes"] == 0 and np.all(last["classes"] == -1) and np.all(last["image"] == 0)
    for b in batches:
        for j in range(4):
            image_id = int(b["image_id"][j])
            if image_id == PADDING_IMAGE_ID:
                continue
            k = row[image_id]
            h, w = int(dataset.heights[k]), int(dataset.widths[k])
            scale = SIZE / max(h, w)
            assert float(b["image_scale"][j]) == pytest.approx(scale, rel=1e-6)
            assert list(b["original_size"][j].numpy()) == [h, w]
            n = int(b["num_boxes"][j])
            np.testing.assert_allclose(b["boxes"][j, :n], boxes[splits[k] : splits[k + 1]] * scale, atol=1e-3)
            np.testing.assert_array_equal(b["classes"][j, :n], classes[splits[k] : splits[k + 1]])
            # the image fills round(h * scale) x round(w * scale) at the top left; the rest is 0
            image = b["image"][j].numpy()
            filled_h, filled_w = round(h * scale), round(w * scale)
            assert np.all(image[filled_h:] == 0) and np.all(image[:, filled_w:] == 0)
            assert np.abs(image[:filled_h, :filled_w]).mean() > 0.1
    assert len(list(data.eval_dataset(4, pad_to_batch=False))[-1]["image_id"]) == 3


def test_the_same_seed_gives_the_same_stream_and_resuming_skips_exactly(data):
    def take(ds, n):
        return [{k: v.numpy() for k, v in b.items()} for b in ds.take(n)]

    first = take(data.train_dataset(2, seed=7), 9)  # 18 elements: more than the 13 of one epoch
    again = take(data.train_dataset(2, seed=7), 9)
    other = take(data.train_dataset(2, seed=8), 9)
    for a, b in zip(first, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert any(not np.array_equal(a["image"], b["image"]) for a, b in zip(first, other))
    # resuming at element 14 (in the second epoch) continues the same stream
    resumed = take(data.train_dataset(2, seed=7, start_example=14), 2)
    for a, b in zip(first[7:], resumed):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    # every epoch visits every training image once
    ids = np.concatenate([b["image_id"] for b in first])
    assert len(set(ids[:13])) == 13


@pytest.mark.parametrize("parallel", [1, 3])
def test_fixed_parallelism_works_with_any_number_of_shards(cache_dir, tmp_path, parallel):
    data = prepare_data(data_config(tmp_path, num_parallel_calls=parallel, cache_shard_size=5), SIZE)
    assert len(data.cache.train.shard_paths) == 3
    assert next(iter(data.train_dataset(2, seed=0)))["image"].shape == (2, SIZE, SIZE, 3)
    one_shard = prepare_data(data_config(cache_dir, num_parallel_calls=parallel), SIZE)
    assert next(iter(one_shard.train_dataset(2, seed=0)))["image"].shape == (2, SIZE, SIZE, 3)


@pytest.mark.parametrize("autotune", [False, True])
def test_autotune_option_reaches_both_pipelines(cache_dir, autotune):
    data = prepare_data(data_config(cache_dir, autotune=autotune), SIZE)
    for ds in (data.train_dataset(2, seed=0), data.eval_dataset(2)):
        assert ds.options().autotune.enabled is autotune
        assert next(iter(ds))["image"].shape == (2, SIZE, SIZE, 3)


def test_label_fn_runs_per_element_before_batching(data):
    def label_fn(element):
        assert element["boxes"].shape == (6, 4)  # one element, not a batch
        return {**element, "doubled": element["num_boxes"] * 2}

    batch = next(iter(data.train_dataset(2, seed=0, label_fn=label_fn)))
    np.testing.assert_array_equal(batch["doubled"], batch["num_boxes"] * 2)
    padded = list(data.eval_dataset(4, label_fn=label_fn))[-1]
    assert padded["doubled"].shape == (4,) and int(padded["image_id"][-1]) == PADDING_IMAGE_ID


def scene(height=60, width=80, box=(12, 20, 40, 50)):
    """A grey image with one red rectangle; box is (ymin, xmin, ymax, xmax) in pixels."""
    image = np.full((height, width, 3), 100, np.uint8)
    image[box[0] : box[2], box[1] : box[3]] = (250, 10, 10)
    return {
        "image": tf.constant(image),
        "boxes": tf.constant([box], tf.float32),
        "classes": tf.constant([2], tf.int32),
        "image_id": tf.constant(5, tf.int64),
        "original_size": tf.constant([height, width], tf.int32),
        "base_scale": tf.constant(1.0),
    }


@pytest.mark.parametrize(
    "uniform",
    [(0.9, 0.5, 0.0, 0.0), (0.1, 0.5, 0.0, 0.0), (0.2, 0.0, 0.0, 0.0), (0.7, 1.0, 0.3, 0.6), (0.3, 0.99, 0.9, 0.1)],
)
def test_flip_and_jitter_keep_the_box_on_the_object(uniform):
    out = preprocess(
        scene(), input_size=SIZE, max_boxes=4, training=True, hflip=True, scale_jitter=(0.5, 2.0),
        uniform=tf.constant(uniform, tf.float32),
    )  # fmt: skip
    image = out["image"].numpy() * STDDEV_RGB + MEAN_RGB
    red = (image[..., 0] > 180) & (image[..., 1] < 80)
    assert int(out["num_boxes"]) == 1 and int(out["classes"][0]) == 2
    ymin, xmin, ymax, xmax = out["boxes"][0].numpy()
    rows, cols = np.nonzero(red)
    # the red pixels span the box to within a pixel (bilinear edges), whatever the flip, scale, crop
    assert abs(rows.min() - ymin) <= 1 and abs(rows.max() + 1 - ymax) <= 1
    assert abs(cols.min() - xmin) <= 1 and abs(cols.max() + 1 - xmax) <= 1
    # the box is where the original box lands under the flip and scale
    scale = float(out["image_scale"])
    assert scale == pytest.approx((0.5 + 1.5 * uniform[1]) * SIZE / 80, rel=1e-5)
    if uniform[2] == 0:  # no vertical crop offset: the box starts at 12 * scale and is 28 * scale high
        assert (ymin, ymax - ymin) == pytest.approx((12 * scale, min(28 * scale, SIZE - 12 * scale)), abs=1e-3)


def test_flip_mirrors_the_box():
    args = dict(input_size=SIZE, max_boxes=4, training=True, hflip=True, scale_jitter=(1.0, 1.0))
    kept = preprocess(scene(), uniform=tf.constant([0.9, 0, 0, 0]), **args)
    flipped = preprocess(scene(), uniform=tf.constant([0.1, 0, 0, 0]), **args)
    width = 80 * SIZE / 80  # the longer side fills the input
    a, b = kept["boxes"][0].numpy(), flipped["boxes"][0].numpy()
    np.testing.assert_allclose(b, [a[0], width - a[3], a[2], width - a[1]], atol=1e-4)
    np.testing.assert_allclose(flipped["image"][:72, :96], kept["image"][:72, ::-1][:, :96], atol=1e-4)


def test_boxes_cropped_away_are_dropped():
    # at factor 2 the 60x80 image becomes 144x192 (scale 2.4); the crop at x 96..192 loses a box
    # at x 5..25 (12..60 after scaling)
    out = preprocess(
        scene(box=(12, 5, 40, 25)), input_size=SIZE, max_boxes=4, training=True, hflip=False,
        scale_jitter=(2.0, 2.0), uniform=tf.constant([0.9, 0.0, 0.0, 0.999]),
    )  # fmt: skip
    assert int(out["num_boxes"]) == 0 and np.all(out["classes"].numpy() == -1)


def test_a_file_that_disagrees_with_the_json_names_itself(tmp_path):
    data = prepare_data(data_config(tmp_path, use_cache=False), SIZE)
    path = data.eval_source.dataset.image_paths()[0]
    tf.io.write_file(path, tf.io.encode_jpeg(np.zeros((10, 10, 3), np.uint8)))
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=f"image size differs from the annotation file:.*{path}.*decodes to.*10 10"
    ):
        next(iter(data.eval_dataset(2)))


def test_invalid_config_and_size_are_rejected(cache_dir):
    with pytest.raises(ValueError, match="input_size: 4; allowed >= 8"):
        prepare_data(data_config(cache_dir), 4)
    with pytest.raises(ValueError, match=r"data.holdout_size: 20 is not smaller than data.synthetic.num_images"):
        prepare_data(
            DataConfig(source="synthetic", synthetic=SYNTHETIC, holdout_size=20, cache_dir=str(cache_dir)), SIZE
        )
