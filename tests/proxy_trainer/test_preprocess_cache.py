"""The one-time preprocessing cache (proxy_trainer.preprocess_cache): build, reuse, bad data, corruption."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from proxy_trainer import preprocess_cache
from proxy_trainer.coco_data import DataError, load_coco
from proxy_trainer.data_config import DataConfig, SyntheticConfig
from proxy_trainer.preprocess_cache import ensure_cache, open_cache, parse_record, verify_cache
from proxy_trainer.synthetic_coco import ensure_synthetic_coco

SIZE = 64  # the input resolution the cache is built for


def config(cache_dir, **kw):
    return DataConfig(
        annotation_file="x", image_dir="x", holdout_size=6, cache_dir=str(cache_dir), cache_shard_size=10, **kw
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A synthetic dataset of 24 images (80..100 px) to cache."""
    synthetic = ensure_synthetic_coco(
        str(tmp_path_factory.mktemp("data")), SyntheticConfig(num_images=24, image_size=(80, 100), seed=5)
    )
    return synthetic.annotation_file, synthetic.image_dir


def cache_dirs(root):
    return sorted(n for n in os.listdir(root) if n.startswith("coco-"))


def records(path, image_format):
    return [{k: v.numpy() for k, v in parse_record(r, image_format).items()} for r in tf.data.TFRecordDataset(path)]


@pytest.mark.parametrize("image_format", ["jpeg", "raw"])
def test_cache_holds_resized_images_boxes_and_the_holdout_ground_truth(source, tmp_path, image_format):
    cache = ensure_cache(*source, config(tmp_path, cache_image_format=image_format), SIZE)
    assert (cache.train.num_examples, cache.holdout.num_examples) == (18, 6)
    assert len(cache.train.shard_paths) == 2 and cache.num_classes == 4
    dataset = load_coco(*source)
    boxes, classes, splits = dataset.training_targets()
    row = {int(i): k for k, i in enumerate(dataset.image_ids)}
    seen = []
    for path in cache.train.shard_paths + cache.holdout.shard_paths:
        for rec in records(path, image_format):
            k = row[int(rec["image_id"])]
            h, w = int(dataset.heights[k]), int(dataset.widths[k])
            assert max(rec["image"].shape[:2]) == SIZE  # the longer side is the input size
            assert rec["base_scale"] == pytest.approx(SIZE / max(h, w))
            assert list(rec["original_size"]) == [h, w]
            np.testing.assert_allclose(rec["boxes"], boxes[splits[k] : splits[k + 1]] * rec["base_scale"], rtol=1e-5)
            np.testing.assert_array_equal(rec["classes"], classes[splits[k] : splits[k + 1]])
            original = tf.io.decode_jpeg(tf.io.read_file(dataset.image_paths()[k])).numpy().astype(np.float32)
            expected = tf.image.resize(original, rec["image"].shape[:2], antialias=True).numpy()
            tolerance = 1.0 if image_format == "raw" else 6.0  # jpeg: re-encoded at quality 95
            assert np.abs(rec["image"].astype(np.float32) - expected).mean() < tolerance
            seen.append(int(rec["image_id"]))
    assert sorted(seen) == sorted(dataset.image_ids.tolist())
    assert seen[18:] == list(cache.holdout_image_ids)
    gt = cache.holdout_ground_truth()
    assert sorted(im["id"] for im in gt["images"]) == list(cache.holdout_image_ids)
    verify_cache(cache)


def test_a_complete_cache_is_reused_without_reading_the_annotations(source, tmp_path, monkeypatch):
    cfg = config(tmp_path)
    first = ensure_cache(*source, cfg, SIZE)

    def no_load(*args, **kwargs):
        raise AssertionError("the instances JSON was parsed although the cache is complete")

    monkeypatch.setattr(preprocess_cache, "load_coco", no_load)
    assert ensure_cache(*source, cfg, SIZE) == first
    assert cache_dirs(tmp_path) == [os.path.basename(first.directory)]


def test_the_key_follows_split_resolution_format_and_the_annotation_file(source, tmp_path):
    key = preprocess_cache.cache_key
    base = dict(holdout_size=6, split_seed=0, input_size=64, image_format="jpeg", box_tolerance=1.0)
    reference = key(*source, **base)
    for change in ({"holdout_size": 7}, {"split_seed": 1}, {"input_size": 128}, {"image_format": "raw"}):
        assert key(*source, **{**base, **change}) != reference
    stat = os.stat(source[0])
    os.utime(source[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert key(*source, **base) != reference  # the annotation file changed


def break_by(kind, cache):
    shard = cache.train.shard_paths[0]
    manifest = os.path.join(cache.directory, "manifest.json")
    if kind == "missing shard":
        os.remove(shard)
    elif kind == "truncated shard":
        with open(shard, "r+b") as f:
            f.truncate(os.path.getsize(shard) - 7)
    elif kind == "no manifest":
        os.remove(manifest)
    elif kind == "garbled manifest":
        with open(manifest, "w") as f:
            f.write('{"format_version": 1, "key')
    elif kind == "manifest without splits":
        data = json.load(open(manifest))
        del data["splits"]
        json.dump(data, open(manifest, "w"))


@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing shard", r"is incomplete: train-00000-of-00002.tfrecord is missing"),
        ("truncated shard", r"is corrupt: train-00000-of-00002.tfrecord has \d+ bytes, expected \d+"),
        ("no manifest", r"is incomplete: no readable manifest.json"),
        ("garbled manifest", r"is incomplete: no readable manifest.json"),
        ("manifest without splits", r"has a malformed manifest.json: KeyError 'splits'"),
    ],
)
def test_a_partial_or_corrupt_cache_is_detected_and_rebuilt(source, tmp_path, kind, message):
    cfg = config(tmp_path)
    cache = ensure_cache(*source, cfg, SIZE)
    break_by(kind, cache)
    with pytest.raises(DataError, match=message):
        open_cache(cache.directory)
    rebuilt = ensure_cache(*source, cfg, SIZE)
    assert rebuilt == cache and cache_dirs(tmp_path) == [os.path.basename(cache.directory)]
    verify_cache(rebuilt)


def test_flipped_bytes_in_a_shard_fail_verification(source, tmp_path):
    cache = ensure_cache(*source, config(tmp_path), SIZE)
    shard = cache.holdout.shard_paths[0]
    with open(shard, "r+b") as f:
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 0xFF]))
    open_cache(cache.directory)  # same size: the manifest check cannot see it
    with pytest.raises(DataError, match=r"holdout-00000-of-00001.tfrecord: cache shard is corrupt"):
        verify_cache(cache)


def copy_dataset(source, directory):
    """A writable copy of the source dataset's files."""
    directory.mkdir()
    (directory / "images").mkdir()
    for name in os.listdir(source[1]):
        (directory / "images" / name).write_bytes(open(os.path.join(source[1], name), "rb").read())
    (directory / "instances.json").write_text(open(source[0]).read())
    return str(directory / "instances.json"), str(directory / "images")


@pytest.mark.parametrize("damage", ["not an image", "truncated", "wrong size"])
def test_bad_images_fail_naming_the_file_and_leave_no_cache(source, tmp_path, damage):
    files = copy_dataset(source, tmp_path / "data")
    victim = os.path.join(files[1], sorted(os.listdir(files[1]))[13])
    content = open(victim, "rb").read()
    if damage == "not an image":
        content = b"<html>not found</html>"
    elif damage == "truncated":
        content = content[: len(content) // 3]
    else:
        content = tf.io.encode_jpeg(np.zeros((50, 40, 3), np.uint8)).numpy()
    open(victim, "wb").write(content)
    cache_root = tmp_path / "cache"
    expected = (
        r"decodes to 50x40 \(height x width\) but .*instances.json says"
        if damage == "wrong size"
        else "does not decode"
    )
    with pytest.raises(DataError, match=rf"{os.path.basename(victim)}: image (file )?{expected}"):
        ensure_cache(*files, config(cache_root), SIZE)
    assert os.listdir(cache_root) == []  # neither a final nor a staging directory is left


def test_a_split_larger_than_the_data_leaves_no_cache(source, tmp_path):
    with pytest.raises(
        DataError, match=r"instances.json: a held-out split of 30 images .* \(24 images\); allowed 1..23"
    ):
        ensure_cache(
            *source, DataConfig(annotation_file="x", image_dir="x", holdout_size=30, cache_dir=str(tmp_path)), SIZE
        )
    assert os.listdir(tmp_path) == []


def test_a_missing_annotation_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"nothing.json: annotation file does not exist"):
        ensure_cache(str(tmp_path / "nothing.json"), str(tmp_path), config(tmp_path), SIZE)
