"""Typed, frozen configuration of the proxy's data: source, reward split, cache, augmentation.

The input resolution is not here: it belongs to the model config (``input_size``) and is passed to
the data functions as an argument. Field types are the simple ones that
``experiments.overrides`` applies strictly (int, float, str, bool, tuples, nested frozen
dataclasses).
"""

from __future__ import annotations

import dataclasses

# docs/proxy_recipe.md#reward-split: the reward is box AP on 7,392 images held out from COCO train2017; the
# remaining 110,895 train the proxy.
COCO_HOLDOUT_SIZE = 7392
# docs/proxy_recipe.md#augmentation (public proxy recipe): horizontal flip + scale jitter [0.5, 2.0].
PROXY_SCALE_JITTER = (0.5, 2.0)

SOURCES = ("coco", "synthetic")
CACHE_IMAGE_FORMATS = ("jpeg", "raw")


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """The generated COCO-format dataset of shapes (``proxy_trainer.data.synthetic``).

    Attributes:
      num_images: images generated (train and held-out together).
      num_classes: object classes, 1..6; each is one shape in one colour family.
      image_size: (min, max) pixels of each image side, drawn per image and side.
      object_size: (min, max) object size as a fraction of the image's shorter side.
      max_objects: the most objects in one image (at least 1; a few images are empty).
      seed: the generator's seed; the same config always writes the same files.
      jpeg_quality: quality of the written JPEG files, 1..100.
    """

    num_images: int = 384
    num_classes: int = 4
    image_size: tuple[int, int] = (96, 128)
    object_size: tuple[float, float] = (0.25, 0.7)
    max_objects: int = 4
    seed: int = 0
    jpeg_quality: int = 92

    def validate(self) -> None:
        """Raises ValueError naming the first invalid field."""
        if self.num_images < 2:
            raise ValueError(f"data.synthetic.num_images: {self.num_images}; allowed >= 2")
        if not 1 <= self.num_classes <= 6:
            raise ValueError(f"data.synthetic.num_classes: {self.num_classes}; allowed 1..6")
        lo, hi = self.image_size
        if not 16 <= lo <= hi <= 4096:
            raise ValueError(f"data.synthetic.image_size: {self.image_size}; allowed 16 <= min <= max <= 4096")
        flo, fhi = self.object_size
        if not 0.05 <= flo <= fhi <= 1.0:
            raise ValueError(f"data.synthetic.object_size: {self.object_size}; allowed 0.05 <= min <= max <= 1.0")
        if not 1 <= self.max_objects <= 16:
            raise ValueError(f"data.synthetic.max_objects: {self.max_objects}; allowed 1..16")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"data.synthetic.jpeg_quality: {self.jpeg_quality}; allowed 1..100")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the proxy's images come from, how they are split, cached and augmented.

    Attributes:
      source: "coco" (``annotation_file`` + ``image_dir``, COCO's format, any tf.io.gfile path) or
        "synthetic" (generated once into ``cache_dir`` from ``synthetic``).
      annotation_file: the instances JSON, e.g. ``.../annotations/instances_train2017.json``.
      image_dir: the directory holding the images named by the JSON, e.g. ``.../train2017``.
      synthetic: the generated dataset (used when ``source == "synthetic"``).
      holdout_size: images held out for the reward; the rest train the proxy.
      split_seed: the seed of the deterministic held-out split.
      cache_dir: where generated data and preprocessing caches live; "" means
        ``$SPINENET_NAS_CACHE`` or ``~/.cache/spinenet_nas``.
      use_cache: read training and evaluation images from the preprocessing cache (built on first
        use), instead of decoding the original files every time.
      cache_image_format: "jpeg" (re-encoded at quality 95, ~10x smaller) or "raw" (decoded pixels,
        no decoding cost, ~0.6 MB per image at 512).
      cache_shard_size: images per TFRecord shard of the cache.
      max_boxes: boxes per element after padding; extra boxes of an image are dropped.
      box_tolerance: pixels a box may extend beyond its image before it is an error; boxes within the
        tolerance are clipped to the image.
      hflip: random horizontal flips in training.
      scale_jitter: (min, max) random scale factor of the training input, 1.0 = the image's longer
        side fills the input.
      shuffle_buffer: elements in the training shuffle buffer (on top of per-epoch file and shard
        order shuffling).
      num_parallel_calls: parallel decode/augment calls; 0 lets tf.data choose (see ``autotune``).
      autotune: tf.data's model-based autotuning of parallelism and buffers. Off (the default),
        ``num_parallel_calls`` 0 means one call per core and prefetch buffers still grow on demand.
        On, a background thread tunes them; in TF 2.21 tearing down a pipeline then waits for
        that thread, up to 10 s at the end of every training and evaluation pass (measured: 10 s
        of a 25 s synthetic trial).
    """

    source: str = "coco"
    annotation_file: str = ""
    image_dir: str = ""
    synthetic: SyntheticConfig = SyntheticConfig()
    holdout_size: int = COCO_HOLDOUT_SIZE
    split_seed: int = 0
    cache_dir: str = ""
    use_cache: bool = True
    cache_image_format: str = "jpeg"
    cache_shard_size: int = 1024
    max_boxes: int = 100
    box_tolerance: float = 1.0
    hflip: bool = True
    scale_jitter: tuple[float, float] = PROXY_SCALE_JITTER
    shuffle_buffer: int = 1024
    num_parallel_calls: int = 0
    autotune: bool = False

    def validate(self) -> None:
        """Raises ValueError naming the first invalid or inconsistent field."""
        if self.source not in SOURCES:
            raise ValueError(f"data.source: {self.source!r}; allowed {', '.join(SOURCES)}")
        if self.source == "coco":
            for name in ("annotation_file", "image_dir"):
                if not getattr(self, name):
                    raise ValueError(
                        f"data.{name} is empty; source 'coco' needs an instances JSON and an image directory"
                    )
        else:
            self.synthetic.validate()
            if self.holdout_size >= self.synthetic.num_images:
                raise ValueError(
                    f"data.holdout_size: {self.holdout_size} is not smaller than data.synthetic.num_images "
                    f"({self.synthetic.num_images}); allowed 1..{self.synthetic.num_images - 1}"
                )
        if self.holdout_size < 1:
            raise ValueError(f"data.holdout_size: {self.holdout_size}; allowed >= 1")
        if self.cache_image_format not in CACHE_IMAGE_FORMATS:
            raise ValueError(
                f"data.cache_image_format: {self.cache_image_format!r}; allowed {', '.join(CACHE_IMAGE_FORMATS)}"
            )
        if self.cache_shard_size < 1:
            raise ValueError(f"data.cache_shard_size: {self.cache_shard_size}; allowed >= 1")
        if self.max_boxes < 1:
            raise ValueError(f"data.max_boxes: {self.max_boxes}; allowed >= 1")
        if self.box_tolerance < 0:
            raise ValueError(f"data.box_tolerance: {self.box_tolerance}; allowed >= 0")
        lo, hi = self.scale_jitter
        if not 0 < lo <= hi <= 8:
            raise ValueError(f"data.scale_jitter: {self.scale_jitter}; allowed 0 < min <= max <= 8")
        if self.shuffle_buffer < 1:
            raise ValueError(f"data.shuffle_buffer: {self.shuffle_buffer}; allowed >= 1")
        if self.num_parallel_calls < 0:
            raise ValueError(f"data.num_parallel_calls: {self.num_parallel_calls}; allowed 0 (tf.data chooses) or >= 1")
