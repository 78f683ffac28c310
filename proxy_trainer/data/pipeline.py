"""The tf.data input pipeline of the proxy: COCO-format images to square, padded, augmented inputs.

``prepare_data(config, input_size)`` resolves the data (generating the synthetic dataset, splitting,
building or reusing the preprocessing cache) and returns a ``ProxyData`` whose ``train_dataset`` and
``eval_dataset`` build the pipelines. Every element, before batching, is a dict:

- "image": float32 [S, S, 3], RGB normalised as ``(pixel - MEAN_RGB) / STDDEV_RGB`` (ImageNet
  statistics on 0..255 pixels, as the reference normalises); the image sits at the top left and the
  padding to the right and below is 0 (the mean colour);
- "boxes": float32 [max_boxes, 4] (ymin, xmin, ymax, xmax) in pixels of the S x S input, zero padded;
- "classes": int32 [max_boxes] class indices (category id - 1), padded with -1;
- "num_boxes": int32, the number of real boxes;
- "image_id": int64 (``PADDING_IMAGE_ID`` for the filler elements of a padded last eval batch);
- "image_scale": float32, input pixels per original pixel (original = input / image_scale in eval);
- "original_size": int32 [2], the original (height, width).

Training elements are randomly flipped left-right and scaled by a factor drawn from ``scale_jitter``
(1.0 = the longer side fills S), then cropped at a random offset to at most S x S (the reference's
recipe); boxes are mapped with the same transform, clipped to the crop, and dropped when nothing is
left of them; crowd and zero-size boxes are never targets. Augmentation randomness is stateless,
seeded by (seed, element index), so a training stream is the same for the same seed on CPU.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from proxy_trainer.data.cache import CacheSplit, PreprocessCache, cache_root, ensure_cache, parse_record
from proxy_trainer.data.coco_files import PADDING_IMAGE_ID, CocoDataset, load_coco, split_image_ids
from proxy_trainer.data.config import DataConfig
from proxy_trainer.data.synthetic import ensure_synthetic_coco

# ImageNet channel statistics on 0..255 pixels, the normalisation of the reference RetinaNet.
MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)

_INV_STDDEV = tuple(1.0 / s for s in STDDEV_RGB)
_NORMALISED_ZERO = tuple(-m / s for m, s in zip(MEAN_RGB, STDDEV_RGB))

Element = dict[str, tf.Tensor]
LabelFn = Callable[[Element], Element]


@dataclasses.dataclass(frozen=True, eq=False)
class FileSource:
    """Images decoded from the original files on every read (no cache)."""

    dataset: CocoDataset

    @property
    def num_examples(self) -> int:
        return self.dataset.num_images

    def records(self, seed: tf.Tensor | None) -> tf.data.Dataset:
        boxes, classes, splits = self.dataset.training_targets()
        ds = tf.data.Dataset.from_tensor_slices(
            {
                "path": self.dataset.image_paths(),
                "image_id": self.dataset.image_ids,
                "size": np.stack([self.dataset.heights, self.dataset.widths], axis=1),
                "boxes": tf.RaggedTensor.from_row_splits(boxes, splits),
                "classes": tf.RaggedTensor.from_row_splits(classes, splits),
            }
        )
        return ds if seed is None else ds.shuffle(self.num_examples, seed=seed)

    def decode(self, record: Element) -> Element:
        image = tf.io.decode_jpeg(tf.io.read_file(record["path"]), channels=3)
        size = tf.cast(record["size"], tf.int32)
        decoded = tf.shape(image)[:2]
        message = ["image size differs from the annotation file:", record["path"], "decodes to", decoded, "not", size]
        check = tf.debugging.Assert(tf.reduce_all(tf.equal(decoded, size)), message)
        with tf.control_dependencies([check]):
            image = tf.identity(image)
        return {
            "image": image,
            "boxes": record["boxes"],
            "classes": record["classes"],
            "image_id": record["image_id"],
            "original_size": size,
            "base_scale": tf.constant(1.0),
        }


@dataclasses.dataclass(frozen=True, eq=False)
class CacheSource:
    """Images read from a preprocessing cache split (resized once, see ``preprocess_cache``)."""

    split: CacheSplit
    image_format: str
    shuffle_buffer: int
    num_parallel_calls: int

    @property
    def num_examples(self) -> int:
        return self.split.num_examples

    def records(self, seed: tf.Tensor | None) -> tf.data.Dataset:
        files = tf.data.Dataset.from_tensor_slices(list(self.split.shard_paths))
        if seed is None:
            return tf.data.TFRecordDataset(files)
        files = files.shuffle(len(self.split.shard_paths), seed=seed)
        cycle = min(8, len(self.split.shard_paths))
        parallel = (
            self.num_parallel_calls
            if self.num_parallel_calls == tf.data.AUTOTUNE
            else min(self.num_parallel_calls, cycle)
        )
        ds = files.interleave(tf.data.TFRecordDataset, cycle, num_parallel_calls=parallel, deterministic=True)
        return ds.shuffle(self.shuffle_buffer, seed=seed)

    def decode(self, record: tf.Tensor) -> Element:
        return parse_record(record, self.image_format)


Source = FileSource | CacheSource


@dataclasses.dataclass(frozen=True, eq=False)
class ProxyData:
    """The proxy's training and held-out data, ready to build pipelines.

    Attributes:
      config: the data config.
      input_size: S, the side of the square input.
      num_classes: class outputs (the largest category id; 90 for COCO).
      num_train_images: images that train the proxy.
      eval_image_ids: the held-out images, in evaluation order.
      train_source: where training images are read from.
      eval_source: where held-out images are read from.
      ground_truth_fn: returns the held-out ground truth (COCO format) when called.
      cache: the preprocessing cache read from (None with ``use_cache`` off).
    """

    config: DataConfig
    input_size: int
    num_classes: int
    num_train_images: int
    eval_image_ids: tuple[int, ...]
    train_source: Source
    eval_source: Source
    ground_truth_fn: Callable[[], dict[str, Any]]
    cache: PreprocessCache | None = None

    @property
    def num_eval_images(self) -> int:
        return len(self.eval_image_ids)

    def eval_ground_truth(self) -> dict[str, Any]:
        """COCO-format ground truth of the held-out images (crowd included), for ``coco_eval``."""
        return self.ground_truth_fn()

    def train_dataset(
        self, batch_size: int, *, seed: int, label_fn: LabelFn | None = None, start_example: int = 0
    ) -> tf.data.Dataset:
        """Endless, shuffled, augmented training batches (``drop_remainder``: static shapes).

        Args:
          batch_size: elements per batch.
          seed: drives shuffling and augmentation; the same seed gives the same stream.
          label_fn: applied to every element after augmentation, before batching (anchor labels).
          start_example: elements to skip, e.g. ``step * batch_size`` when resuming; whole epochs are
            skipped without reading them.
        """
        source, cfg = self.train_source, self.config
        first_epoch, skip = divmod(start_example, source.num_examples)

        def epoch(e: tf.Tensor) -> tf.data.Dataset:
            return source.records(tf.math.floormod(e * 1_000_003 + seed, 2**31 - 1))

        ds = tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch).skip(skip).enumerate(start=start_example)

        def element(index: tf.Tensor, record: Any) -> Element:
            uniform = tf.random.stateless_uniform([4], seed=tf.stack([tf.constant(seed, tf.int64), index]))
            return preprocess(
                source.decode(record), input_size=self.input_size, max_boxes=cfg.max_boxes, training=True,
                hflip=cfg.hflip, scale_jitter=cfg.scale_jitter, uniform=uniform,
            )  # fmt: skip

        ds = ds.map(element, self._parallel, deterministic=True)
        if label_fn is not None:
            ds = ds.map(label_fn, self._parallel, deterministic=True)
        return self._finish(ds.batch(batch_size, drop_remainder=True))

    def eval_dataset(
        self, batch_size: int, *, label_fn: LabelFn | None = None, pad_to_batch: bool = True
    ) -> tf.data.Dataset:
        """The held-out images once, in ``eval_image_ids`` order, without augmentation.

        Args:
          batch_size: elements per batch.
          label_fn: as in ``train_dataset``.
          pad_to_batch: fill the last batch with elements whose image_id is ``PADDING_IMAGE_ID``
            (num_boxes 0, classes -1, everything else 0), so every batch has the same shape.
        """
        source = self.eval_source

        def element(record: Any) -> Element:
            return preprocess(
                source.decode(record), input_size=self.input_size, max_boxes=self.config.max_boxes, training=False
            )

        ds = source.records(None).map(element, self._parallel, deterministic=True)
        if label_fn is not None:
            ds = ds.map(label_fn, self._parallel, deterministic=True)
        missing = -self.num_eval_images % batch_size
        if pad_to_batch and missing:
            ds = ds.concatenate(tf.data.Dataset.from_tensors(_filler(ds.element_spec)).repeat(missing))
        return self._finish(ds.batch(batch_size))

    def _finish(self, ds: tf.data.Dataset) -> tf.data.Dataset:
        options = tf.data.Options()
        options.autotune.enabled = self.config.autotune
        return ds.prefetch(tf.data.AUTOTUNE).with_options(options)

    @property
    def _parallel(self) -> int:
        return self.config.num_parallel_calls or tf.data.AUTOTUNE


def prepare_data(config: DataConfig, input_size: int, *, log: Callable[[str], None] | None = None) -> ProxyData:
    """Resolves the data of ``config`` for inputs of ``input_size`` pixels.

    Generates the synthetic dataset (source "synthetic"), then with ``use_cache`` reuses or builds the
    preprocessing cache (and never parses the instances JSON when the cache is complete); without
    it, loads and validates the JSON and splits it.

    Raises:
      ValueError: an invalid config or input size.
      DataError: bad data, naming the file (see ``coco_data`` and ``preprocess_cache``).
    """
    config.validate()
    if input_size < 8:
        raise ValueError(f"input_size: {input_size}; allowed >= 8")
    annotation_file, image_dir = config.annotation_file, config.image_dir
    if config.source == "synthetic":
        synthetic = ensure_synthetic_coco(cache_root(config.cache_dir), config.synthetic)
        annotation_file, image_dir = synthetic.annotation_file, synthetic.image_dir
    parallel = config.num_parallel_calls or tf.data.AUTOTUNE
    if config.use_cache:
        cache = ensure_cache(annotation_file, image_dir, config, input_size, log)
        return ProxyData(
            config=config, input_size=input_size, num_classes=cache.num_classes,
            num_train_images=cache.train.num_examples, eval_image_ids=cache.holdout_image_ids,
            train_source=CacheSource(cache.train, cache.image_format, config.shuffle_buffer, parallel),
            eval_source=CacheSource(cache.holdout, cache.image_format, config.shuffle_buffer, parallel),
            ground_truth_fn=cache.holdout_ground_truth,
            cache=cache,
        )  # fmt: skip
    dataset = load_coco(annotation_file, image_dir, box_tolerance=config.box_tolerance)
    train_ids, holdout_ids = split_image_ids(
        dataset.image_ids, config.holdout_size, config.split_seed, source=annotation_file
    )
    holdout = dataset.subset(holdout_ids)
    return ProxyData(
        config=config, input_size=input_size, num_classes=dataset.num_classes, num_train_images=len(train_ids),
        eval_image_ids=holdout_ids, train_source=FileSource(dataset.subset(train_ids)),
        eval_source=FileSource(holdout), ground_truth_fn=holdout.ground_truth,
    )  # fmt: skip


def preprocess(
    decoded: Element, *, input_size: int, max_boxes: int, training: bool, hflip: bool = False,
    scale_jitter: tuple[float, float] = (1.0, 1.0), uniform: tf.Tensor | None = None,
) -> Element:  # fmt: skip
    """One decoded image -> one pipeline element (see the module docstring).

    Args:
      decoded: "image" uint8 [h, w, 3], "boxes" float32 [n, 4] (ymin, xmin, ymax, xmax) in its pixels,
        "classes" int32 [n], "image_id", "original_size" int32 [2], "base_scale" (stored / original).
      input_size: S.
      max_boxes: boxes kept (the first ones) and padded to.
      training: apply flip, scale jitter and a random crop offset, drawn from ``uniform``.
      hflip: flip left-right with probability 1/2 (training only).
      scale_jitter: (min, max) scale factor (training only).
      uniform: float32 [4] uniform numbers in [0, 1): flip, scale, crop y, crop x.
    """
    image = decoded["image"]
    h, w = tf.cast(tf.shape(image)[0], tf.float32), tf.cast(tf.shape(image)[1], tf.float32)
    size = float(input_size)
    u = uniform if uniform is not None else tf.zeros([4])
    factor = scale_jitter[0] + (scale_jitter[1] - scale_jitter[0]) * u[1] if training else tf.constant(1.0)
    scale = tf.minimum(factor * size / h, factor * size / w)
    new_h, new_w = tf.maximum(tf.round(h * scale), 1.0), tf.maximum(tf.round(w * scale), 1.0)
    if training:
        oy = tf.minimum(tf.floor(u[2] * (tf.maximum(new_h - size, 0.0) + 1)), tf.maximum(new_h - size, 0.0))
        ox = tf.minimum(tf.floor(u[3] * (tf.maximum(new_w - size, 0.0) + 1)), tf.maximum(new_w - size, 0.0))
    else:
        oy = ox = tf.constant(0.0)
    crop_h, crop_w = tf.minimum(size, new_h - oy), tf.minimum(size, new_w - ox)
    flip = tf.logical_and(tf.constant(training and hflip), u[0] < 0.5)

    # As the reference: resize the whole image, then crop (a flip of the crop equals a crop of the
    # flipped image at the mirrored offset, which is as likely). Resizing to the rounded size moves
    # pixels by at most half an input pixel against the boxes, which are mapped by ``scale``.
    crop_size = tf.cast(tf.stack([crop_h, crop_w]), tf.int32)
    new_size = tf.cast(tf.stack([new_h, new_w]), tf.int32)
    begin, extent = tf.cast(tf.stack([oy, ox, 0.0]), tf.int32), tf.concat([crop_size, [3]], 0)
    crop = tf.cond(
        tf.reduce_all(tf.equal(new_size, tf.shape(image)[:2])),
        lambda: tf.cast(tf.slice(image, begin, extent), tf.float32),
        lambda: tf.slice(tf.image.resize(image, new_size), begin, extent),
    )
    crop = tf.cond(flip, lambda: tf.reverse(crop, [1]), lambda: crop)
    # Normalise and pad as rows of width * 3 values: per-channel broadcasting over a last axis of 3
    # is several times slower on CPU.
    rows = tf.reshape(crop, [crop_size[0], crop_size[1] * 3])
    rows = rows * tf.tile(_INV_STDDEV, crop_size[1:]) + tf.tile(_NORMALISED_ZERO, crop_size[1:])
    rows = tf.pad(rows, [[0, input_size - crop_size[0]], [0, (input_size - crop_size[1]) * 3]])
    out_image = tf.reshape(rows, [input_size, input_size, 3])
    out_image.set_shape([input_size, input_size, 3])

    boxes = decoded["boxes"] * scale - tf.stack([oy, ox, oy, ox])
    boxes = tf.minimum(tf.maximum(boxes, 0.0), tf.stack([crop_h, crop_w, crop_h, crop_w]))
    mirrored = tf.stack([boxes[:, 0], crop_w - boxes[:, 3], boxes[:, 2], crop_w - boxes[:, 1]], axis=1)
    boxes = tf.where(flip, mirrored, boxes)
    keep = tf.logical_and(boxes[:, 2] > boxes[:, 0], boxes[:, 3] > boxes[:, 1])
    boxes, classes = tf.boolean_mask(boxes, keep)[:max_boxes], tf.boolean_mask(decoded["classes"], keep)[:max_boxes]
    num_boxes = tf.shape(boxes)[0]
    boxes = tf.pad(boxes, [[0, max_boxes - num_boxes], [0, 0]])
    classes = tf.pad(classes, [[0, max_boxes - num_boxes]], constant_values=-1)
    boxes.set_shape([max_boxes, 4])
    classes.set_shape([max_boxes])
    return {
        "image": out_image,
        "boxes": boxes,
        "classes": classes,
        "num_boxes": num_boxes,
        "image_id": tf.cast(decoded["image_id"], tf.int64),
        "image_scale": decoded["base_scale"] * scale,
        "original_size": decoded["original_size"],
    }


def _filler(spec: dict[str, Any]) -> Element:
    """An element of ``spec`` that marks padding: image_id PADDING_IMAGE_ID, classes -1, else 0."""

    def zeros(name: str, s: tf.TensorSpec) -> tf.Tensor:
        if not isinstance(s, tf.TensorSpec) or not s.shape.is_fully_defined():
            raise ValueError(f"eval element {name!r} is {s}; pad_to_batch needs tensors of static shape")
        value = {"image_id": PADDING_IMAGE_ID, "classes": -1}.get(name, 0)
        return tf.fill(s.shape, tf.constant(value, s.dtype))

    return {name: tf.nest.map_structure(lambda s, n=name: zeros(n, s), value) for name, value in spec.items()}
