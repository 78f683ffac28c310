"""The one-time preprocessing cache that every trial reuses.

Decoding full-size JPEGs costs more CPU than a trial's training step can wait for. The cache decodes
every image once, resizes it so that its longer side is the proxy's input size, and stores it (JPEG
re-encoded at quality 95, or raw pixels) with its training boxes in TFRecord shards, one set for the
proxy-training images and one for the held-out reward images, plus the held-out ground truth as a
small COCO-format JSON (so trials never parse the full instances JSON).

A cache is complete when its ``manifest.json`` (written last, atomically) lists every shard with its
size. A directory without one is a build that did not finish, and is rebuilt; a complete cache that
does not open or verify is a ``CacheError`` that tells the user to remove it, and is never deleted or
rebuilt automatically, since trials on other nodes may be reading it. Concurrent builders take turns
or reuse each other's result (``cache_publish`` says what that guarantees on POSIX and on gs://). The
cache key covers the annotation file (path, size and modification time), the image directory path,
the split, the resolution and the storage format.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from proxy_trainer.data.coco_files import CocoDataset, DataError, join_path, load_coco, read_json, split_image_ids
from proxy_trainer.data.config import DataConfig
from proxy_trainer.data.publish import CacheError as CacheError  # raised here, caught by callers
from proxy_trainer.data.publish import atomic_directory, damaged, has_manifest

CACHE_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
GROUND_TRUTH_FILE = "holdout_ground_truth.json"
JPEG_QUALITY = 95

_FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "height": tf.io.FixedLenFeature([], tf.int64),
    "width": tf.io.FixedLenFeature([], tf.int64),
    "image_id": tf.io.FixedLenFeature([], tf.int64),
    "original_height": tf.io.FixedLenFeature([], tf.int64),
    "original_width": tf.io.FixedLenFeature([], tf.int64),
    "scale": tf.io.FixedLenFeature([], tf.float32),
    "boxes": tf.io.VarLenFeature(tf.float32),
    "classes": tf.io.VarLenFeature(tf.int64),
}


@dataclasses.dataclass(frozen=True)
class CacheSplit:
    """One split's shards: ``name`` is "train" or "holdout"."""

    name: str
    num_examples: int
    shard_paths: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class PreprocessCache:
    """A complete cache directory, as its manifest describes it."""

    directory: str
    key: str
    input_size: int
    image_format: str
    num_classes: int
    train: CacheSplit
    holdout: CacheSplit
    holdout_image_ids: tuple[int, ...]

    def holdout_ground_truth(self) -> dict[str, Any]:
        """COCO-format ground truth of the held-out images (boxes as shipped, crowd included)."""
        return read_json(join_path(self.directory, GROUND_TRUTH_FILE), "cached ground truth")


def cache_key(
    annotation_file: str, image_dir: str, *, holdout_size: int, split_seed: int, input_size: int,
    image_format: str, box_tolerance: float,
) -> str:  # fmt: skip
    """A hex digest of everything a cache's content depends on.

    The annotation file enters by path, size and modification time (not content: hashing COCO's
    448 MB on every trial costs too much); the images by their directory's path.

    Raises:
      DataError: the annotation file does not exist.
    """
    try:
        stat = tf.io.gfile.stat(annotation_file)
    except tf.errors.NotFoundError:
        raise DataError(f"{annotation_file}: annotation file does not exist") from None
    inputs = {
        "version": CACHE_FORMAT_VERSION, "annotation_file": annotation_file, "size": stat.length,
        "mtime_nsec": stat.mtime_nsec, "image_dir": image_dir.rstrip("/"), "holdout_size": holdout_size,
        "split_seed": split_seed, "input_size": input_size, "image_format": image_format,
        "box_tolerance": box_tolerance,
    }  # fmt: skip
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:20]


def ensure_cache(
    annotation_file: str, image_dir: str, config: DataConfig, input_size: int,
    log: Callable[[str], None] | None = None,
) -> PreprocessCache:  # fmt: skip
    """The cache for this data, split and resolution: reused when complete, else built.

    A directory without a manifest (a build that was killed) is rebuilt; one with a manifest is only
    ever opened, so that no worker's files disappear under it. Builders of one cache at once take
    turns or reuse the first one's result (see ``cache_publish``).

    Raises:
      CacheError: the cache is complete (its manifest is there) but does not open; the message names
        it and says to remove it.
      DataError: bad data (see ``load_coco``), an image file that does not decode or decodes to
        another size than the JSON says, or a held-out split larger than the data; the message names
        the file, and no partial cache is left behind.
    """
    log = log or _quiet
    key = cache_key(
        annotation_file, image_dir, holdout_size=config.holdout_size, split_seed=config.split_seed,
        input_size=input_size, image_format=config.cache_image_format, box_tolerance=config.box_tolerance,
    )  # fmt: skip
    directory = join_path(cache_root(config.cache_dir), f"coco-{key}")
    if has_manifest(directory):
        return open_cache(directory, key)
    with atomic_directory(directory, lambda d: open_cache(d, key) is not None, log=log) as staging:
        if staging is not None:  # else another process built it while this one waited
            log(f"building the preprocessing cache {directory} from {annotation_file}")
            dataset = load_coco(annotation_file, image_dir, box_tolerance=config.box_tolerance)
            train_ids, holdout_ids = split_image_ids(
                dataset.image_ids, config.holdout_size, config.split_seed, source=annotation_file
            )
            _write_cache(dataset, train_ids, holdout_ids, staging, key, config, input_size, log)
    return open_cache(directory, key)


def open_cache(directory: str, key: str | None = None) -> PreprocessCache:
    """Reads a cache's manifest and checks that every file it lists is there with its size.

    Raises:
      DataError: no manifest (the cache is incomplete; ``ensure_cache`` rebuilds it).
      CacheError: the manifest is there but unreadable, of another format version or key, or a file
        it lists is missing or has another size.
    """
    where = f"{directory}: preprocessing cache"
    if not has_manifest(directory):
        raise DataError(f"{where} is incomplete: no {MANIFEST} (its build did not finish)")
    manifest = _read_manifest(directory)
    if manifest.get("format_version") != CACHE_FORMAT_VERSION:
        raise damaged(
            directory, f"{where} has format {manifest.get('format_version')}; this code reads {CACHE_FORMAT_VERSION}"
        )
    if key is not None and manifest.get("key") != key:
        raise damaged(directory, f"{where} has key {manifest.get('key')}, expected {key}")
    try:
        return _cache_from_manifest(directory, manifest)
    except DataError:
        raise
    except tf.errors.OpError as e:  # e.g. gs:// unreachable: not damage, so no advice to remove it
        raise DataError(f"{where} cannot be read: {e.message.splitlines()[0]}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise damaged(directory, f"{where} has a malformed {MANIFEST}: {type(e).__name__} {e}") from None


def _read_manifest(directory: str) -> dict[str, Any]:
    path = join_path(directory, MANIFEST)
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            data = json.loads(f.read())
    except tf.errors.OpError as e:
        raise damaged(directory, f"{path}: cannot read the cache manifest: {e.message.splitlines()[0]}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise damaged(directory, f"{path}: cache manifest is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise damaged(directory, f"{path}: cache manifest is not a JSON object")
    return data


def _cache_from_manifest(directory: str, manifest: dict[str, Any]) -> PreprocessCache:
    where = f"{directory}: preprocessing cache"
    files = {s["file"]: s["bytes"] for split in manifest["splits"].values() for s in split["shards"]}
    files[GROUND_TRUTH_FILE] = manifest["ground_truth_bytes"]
    for name, size in files.items():
        path = join_path(directory, name)
        if not tf.io.gfile.exists(path):
            raise damaged(directory, f"{where} is corrupt: {name} is missing")
        if tf.io.gfile.stat(path).length != size:
            raise damaged(
                directory, f"{where} is corrupt: {name} has {tf.io.gfile.stat(path).length} bytes, expected {size}"
            )
    splits = {
        name: CacheSplit(name, s["num_examples"], tuple(join_path(directory, x["file"]) for x in s["shards"]))
        for name, s in manifest["splits"].items()
    }
    return PreprocessCache(
        directory=directory, key=manifest["key"], input_size=manifest["input_size"],
        image_format=manifest["image_format"], num_classes=manifest["num_classes"], train=splits["train"],
        holdout=splits["holdout"], holdout_image_ids=tuple(manifest["holdout_image_ids"]),
    )  # fmt: skip


def verify_cache(cache: PreprocessCache) -> None:
    """Reads every record of every shard (checksums included) and counts them.

    Raises:
      CacheError: naming the shard that does not read back or holds the wrong number of records.
    """
    for split in (cache.train, cache.holdout):
        total = 0
        for path in split.shard_paths:
            try:
                total += sum(1 for _ in tf.data.TFRecordDataset(path))
            except tf.errors.OpError as e:
                msg = e.message.splitlines()[0]
                raise damaged(cache.directory, f"{path}: cache shard is corrupt: {msg}") from None
        if total != split.num_examples:
            problem = f"{split.name} split holds {total} records, manifest says {split.num_examples}"
            raise damaged(cache.directory, f"{cache.directory}: {problem}")


def parse_record(serialized: tf.Tensor, image_format: str) -> dict[str, tf.Tensor]:
    """One cache record -> the decoded element of the input pipeline (see ``input_pipeline``)."""
    f = tf.io.parse_single_example(serialized, _FEATURES)
    shape = tf.stack([tf.cast(f["height"], tf.int32), tf.cast(f["width"], tf.int32), 3])
    if image_format == "raw":
        image = tf.reshape(tf.io.decode_raw(f["image"], tf.uint8), shape)
    else:
        image = tf.io.decode_jpeg(f["image"], channels=3)
    return {
        "image": image,
        "boxes": tf.reshape(tf.sparse.to_dense(f["boxes"]), [-1, 4]),
        "classes": tf.cast(tf.sparse.to_dense(f["classes"]), tf.int32),
        "image_id": f["image_id"],
        "original_size": tf.cast(tf.stack([f["original_height"], f["original_width"]]), tf.int32),
        "base_scale": f["scale"],
    }


def _write_cache(
    dataset: CocoDataset, train_ids: tuple[int, ...], holdout_ids: tuple[int, ...], directory: str, key: str,
    config: DataConfig, input_size: int, log: Callable[[str], None],
) -> None:  # fmt: skip
    # Training images are stored in a seeded random order so that shard-level shuffling mixes well.
    order = sorted(train_ids, key=lambda i: hashlib.sha256(f"order:{config.split_seed}:{i}".encode()).digest())
    splits = {}
    for name, ids in (("train", order), ("holdout", holdout_ids)):
        subset = dataset.subset(ids)
        shards = _write_split(subset, name, directory, config, input_size, log)
        splits[name] = {"num_examples": subset.num_images, "shards": shards}
    gt_path = join_path(directory, GROUND_TRUTH_FILE)
    write_json_file(gt_path, dataset.subset(holdout_ids).ground_truth())
    manifest = {
        "format_version": CACHE_FORMAT_VERSION, "key": key, "annotation_file": dataset.annotation_file,
        "image_dir": dataset.image_dir, "input_size": input_size, "image_format": config.cache_image_format,
        "num_classes": dataset.num_classes, "splits": splits, "holdout_image_ids": list(holdout_ids),
        "ground_truth_bytes": tf.io.gfile.stat(gt_path).length,
        "zero_size_ann_ids": list(dataset.zero_size_ann_ids),
    }  # fmt: skip
    write_json_file(join_path(directory, MANIFEST), manifest)


def _write_split(
    subset: CocoDataset, name: str, directory: str, config: DataConfig, input_size: int, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    paths = subset.image_paths()
    boxes, classes, splits = subset.training_targets()
    jpeg = config.cache_image_format == "jpeg"

    def load(index: tf.Tensor, path: tf.Tensor) -> tuple[tf.Tensor, ...]:
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        size = tf.cast(tf.shape(image)[:2], tf.float32)
        scale = input_size / tf.reduce_max(size)
        resized = tf.image.resize(image, tf.cast(tf.round(size * scale), tf.int32), antialias=True)
        resized = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
        encoded = tf.io.encode_jpeg(resized, quality=JPEG_QUALITY) if jpeg else tf.zeros([], tf.string)
        return index, tf.shape(image)[:2], tf.shape(resized)[:2], scale, encoded, resized if not jpeg else resized[:0]

    parallel = config.num_parallel_calls or tf.data.AUTOTUNE
    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), paths)).map(load, parallel).ignore_errors()
    num_shards = max(1, -(-len(paths) // config.cache_shard_size))
    shards, writer, expected = [], None, 0
    try:
        for index, decoded_size, stored_size, scale, encoded, pixels in ds.prefetch(8).as_numpy_iterator():
            if index != expected:  # a file that could not be read or decoded was dropped
                raise DataError(_unreadable(paths[expected]))
            h, w = int(subset.heights[index]), int(subset.widths[index])
            if tuple(decoded_size) != (h, w):
                raise DataError(
                    f"{paths[index]}: image decodes to {decoded_size[0]}x{decoded_size[1]} (height x width) but "
                    f"{subset.annotation_file} says {h}x{w}"
                )
            if index % config.cache_shard_size == 0:
                if writer is not None:
                    writer.close()
                shard = f"{name}-{len(shards):05d}-of-{num_shards:05d}.tfrecord"
                shards.append({"file": shard, "num_examples": 0})
                writer = tf.io.TFRecordWriter(join_path(directory, shard))
            rows = slice(splits[index], splits[index + 1])
            feature = {
                "image": _bytes(encoded if jpeg else pixels.tobytes()),
                "height": _ints([stored_size[0]]), "width": _ints([stored_size[1]]),
                "image_id": _ints([subset.image_ids[index]]),
                "original_height": _ints([h]), "original_width": _ints([w]),
                "scale": tf.train.Feature(float_list=tf.train.FloatList(value=[scale])),
                "boxes": tf.train.Feature(float_list=tf.train.FloatList(value=(boxes[rows] * scale).reshape(-1))),
                "classes": _ints(classes[rows]),
            }  # fmt: skip
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
            shards[-1]["num_examples"] += 1
            expected += 1
            if expected % 5000 == 0:
                log(f"cache {name}: {expected}/{len(paths)} images")
        if expected != len(paths):
            raise DataError(_unreadable(paths[expected]))
    finally:
        if writer is not None:
            writer.close()
    for shard in shards:
        shard["bytes"] = tf.io.gfile.stat(join_path(directory, shard["file"])).length
    return shards


def _unreadable(path: str) -> str:
    """Why one image file could not be read or decoded, as a message naming it."""
    try:
        tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
    except tf.errors.NotFoundError:
        return f"{path}: image file does not exist"
    except tf.errors.OpError as e:
        return f"{path}: image file does not decode: {e.message.splitlines()[0]}"
    return f"{path}: image file could not be read"


def write_json_file(path: str, obj: Any) -> None:
    """Writes JSON to ``path`` atomically (a temporary file renamed into place)."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(json.dumps(obj))
    tf.io.gfile.rename(tmp, path, overwrite=True)


def read_manifest(path: str) -> dict[str, Any] | None:
    """A manifest's content, or None when it is missing or unreadable."""
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            data = json.loads(f.read())
    except (tf.errors.OpError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def default_cache_root() -> str:
    """``$SPINENET_NAS_CACHE`` or ``~/.cache/spinenet_nas``."""
    return os.environ.get("SPINENET_NAS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "spinenet_nas")


def cache_root(cache_dir: str) -> str:
    """``cache_dir``, or the default root when it is empty."""
    return cache_dir or default_cache_root()


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _ints(values: Any) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _quiet(_: str) -> None:
    pass
