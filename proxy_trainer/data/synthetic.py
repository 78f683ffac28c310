"""A generated COCO-format detection dataset: coloured shapes on textured backgrounds.

The embedded default of the demo and the tests. ``ensure_synthetic_coco`` writes real JPEG files and
an ``instances.json`` in COCO's format (info, licenses, images, annotations with bbox, area, iscrowd
and an RLE segmentation, categories) once into a cache directory, atomically, and reuses it after.

Designed to be learnable by a tiny RetinaNet in minutes: each class is one shape in one saturated
colour family (both cues identify it), backgrounds are low-saturation textures (gradients, stripes,
noise), objects are large relative to the image (a quarter to two thirds of the shorter side by
default, so anchors at P3..P5 match them), 1-4 per image with limited overlap, and a few images are
empty. Boxes are tight around the visible pixels of each object, as COCO's are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import tensorflow as tf
from pycocotools import mask as mask_utils

from proxy_trainer.data.cache import atomic_directory, read_manifest, write_json_file
from proxy_trainer.data.coco_files import join_path
from proxy_trainer.data.config import SyntheticConfig

# Bump when the generated images or annotations change for the same config.
GENERATOR_VERSION = 1
ANNOTATION_FILE = "instances.json"
IMAGE_DIR = "images"
MANIFEST = "manifest.json"

# One shape and one colour family (RGB) per class.
SHAPES = ("rectangle", "ellipse", "triangle", "cross", "ring", "diamond")
COLOURS = np.array(
    [(225, 35, 35), (35, 195, 55), (45, 80, 235), (240, 215, 30), (215, 45, 205), (30, 205, 215)], np.float64
)
EMPTY_IMAGE_FRACTION = 0.05
MAX_IOU = 0.3  # overlap allowed between two objects of one image
MAX_COVERED = 0.45  # fraction of an object that a later one may cover


@dataclasses.dataclass(frozen=True)
class SyntheticCoco:
    """Where a generated dataset lives: ``load_coco(annotation_file, image_dir)`` reads it."""

    directory: str
    annotation_file: str
    image_dir: str


def synthetic_key(config: SyntheticConfig) -> str:
    """A hex digest identifying the files ``config`` generates."""
    text = json.dumps({"version": GENERATOR_VERSION, **dataclasses.asdict(config)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ensure_synthetic_coco(cache_dir: str, config: SyntheticConfig | None = None) -> SyntheticCoco:
    """Generates the dataset into ``cache_dir/synthetic-KEY`` unless a complete copy is there.

    Generation writes to a staging directory and renames it into place after its manifest, so an
    interrupted run never leaves a directory that looks complete.

    Raises:
      ValueError: an invalid ``config`` (default: ``SyntheticConfig()``).
    """
    config = config or SyntheticConfig()
    config.validate()
    key = synthetic_key(config)
    directory = join_path(cache_dir, f"synthetic-{key}")
    result = SyntheticCoco(directory, join_path(directory, ANNOTATION_FILE), join_path(directory, IMAGE_DIR))
    if _is_complete(directory, key, config.num_images):
        return result
    with atomic_directory(directory, lambda d: _is_complete(d, key, config.num_images)) as staging:
        if staging is not None:
            generate_synthetic_coco(staging, config)
            write_json_file(join_path(staging, MANIFEST), {"key": key, "num_images": config.num_images})
    return result


def generate_synthetic_coco(directory: str, config: SyntheticConfig) -> None:
    """Writes ``directory/images/*.jpg`` and ``directory/instances.json`` (not atomic by itself)."""
    rng = np.random.default_rng(config.seed)
    tf.io.gfile.makedirs(join_path(directory, IMAGE_DIR))
    images, annotations = [], []
    for image_id in range(1, config.num_images + 1):
        height, width = (int(v) for v in rng.integers(config.image_size[0], config.image_size[1] + 1, size=2))
        pixels, objects = draw_image(rng, height, width, config)
        file_name = f"{image_id:012d}.jpg"
        jpeg = tf.io.encode_jpeg(pixels, quality=config.jpeg_quality, chroma_downsampling=False).numpy()
        with tf.io.gfile.GFile(join_path(join_path(directory, IMAGE_DIR), file_name), "wb") as f:
            f.write(jpeg)
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width, "license": 1})
        for class_index, mask in objects:
            ys, xs = np.nonzero(mask)
            x0, y0 = int(xs.min()), int(ys.min())
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": class_index + 1,
                    "bbox": [float(x0), float(y0), float(xs.max() + 1 - x0), float(ys.max() + 1 - y0)],
                    "area": float(mask.sum()),
                    "iscrowd": 0,
                    "segmentation": {"size": [height, width], "counts": rle["counts"].decode("ascii")},
                }
            )
    categories = [{"id": c + 1, "name": SHAPES[c], "supercategory": "shape"} for c in range(config.num_classes)]
    instances = {
        "info": {
            "description": "spinenet-nas synthetic shapes",
            "version": str(GENERATOR_VERSION),
            "year": 2020,
            "contributor": "proxy_trainer.data.synthetic",
        },  # fmt: skip
        "licenses": [{"id": 1, "name": "generated", "url": ""}],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    write_json_file(join_path(directory, ANNOTATION_FILE), instances)


def draw_image(
    rng: np.random.Generator, height: int, width: int, config: SyntheticConfig
) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """One image and its objects.

    Returns:
      pixels: uint8 [height, width, 3].
      objects: (class index, visible mask bool [height, width]) per object, in drawing order; objects
        whose visible part is empty are left out.
    """
    canvas = _background(rng, height, width)
    owner = np.full((height, width), -1, np.int32)
    count = 0 if rng.random() < EMPTY_IMAGE_FRACTION else int(rng.integers(1, config.max_objects + 1))
    classes, boxes = [], []
    for _ in range(count):
        for _attempt in range(20):
            class_index = int(rng.integers(config.num_classes))
            box = _sample_box(rng, height, width, config, SHAPES[class_index])
            if all(_acceptable_overlap(box, other) for other in boxes):
                break
        else:
            continue
        mask = _shape_mask(SHAPES[class_index], box, height, width)
        if not mask.any():
            continue
        colour = COLOURS[class_index] * rng.uniform(0.75, 1.05) + rng.uniform(-18, 18, size=3)
        texture = rng.normal(0, 6, size=(height, width, 1))
        canvas = np.where(mask[..., None], colour + texture, canvas)
        owner[mask] = len(boxes)
        classes.append(class_index)
        boxes.append(box)
    objects = [(c, owner == k) for k, c in enumerate(classes) if (owner == k).any()]
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8), objects


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Low-saturation texture: a grey base with a tint, a gradient, maybe stripes, and noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = rng.uniform(60, 190) + rng.uniform(-15, 15, size=3)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)[..., None]
    canvas = base + rng.uniform(-45, 45) * ramp
    if rng.random() < 0.6:
        theta, period = rng.uniform(0, np.pi), rng.uniform(5, 24)
        phase = (np.cos(theta) * xx + np.sin(theta) * yy) * 2 * np.pi / period
        canvas = canvas + rng.uniform(8, 28) * np.sin(phase)[..., None]
    return canvas + rng.normal(0, rng.uniform(3, 14), size=(height, width, 1))


def _sample_box(
    rng: np.random.Generator, height: int, width: int, config: SyntheticConfig, shape: str
) -> tuple[float, float, float, float]:
    """(y0, x0, y1, x1) of a shape, inside the image."""
    size = rng.uniform(*config.object_size) * min(height, width)
    aspect = 1.0 if shape in ("cross", "ring", "triangle") else float(np.exp(rng.uniform(-0.4, 0.4)))
    box_h, box_w = min(size * np.sqrt(aspect), height), min(size / np.sqrt(aspect), width)
    y0, x0 = rng.uniform(0, height - box_h), rng.uniform(0, width - box_w)
    return (y0, x0, y0 + box_h, x0 + box_w)


def _acceptable_overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    ih = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iw = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ih * iw
    area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
    iou = inter / (area_a + area_b - inter)
    return iou <= MAX_IOU and inter <= MAX_COVERED * min(area_a, area_b)


def _shape_mask(shape: str, box: tuple[float, ...], height: int, width: int) -> np.ndarray:
    """Pixels whose centres fall inside ``shape`` drawn in ``box``."""
    y0, x0, y1, x1 = box
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    u = 2 * (xx - x0) / (x1 - x0) - 1  # -1..1 across the box
    v = 2 * (yy - y0) / (y1 - y0) - 1
    inside = (np.abs(u) <= 1) & (np.abs(v) <= 1)
    if shape == "rectangle":
        return inside
    if shape == "ellipse":
        return u**2 + v**2 <= 1
    if shape == "triangle":  # apex up
        return inside & (np.abs(u) <= (v + 1) / 2)
    if shape == "cross":
        return inside & ((np.abs(u) <= 0.33) | (np.abs(v) <= 0.33))
    if shape == "ring":
        r2 = u**2 + v**2
        return (r2 <= 1) & (r2 >= 0.45**2)
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1
    raise ValueError(f"unknown shape {shape!r}; allowed {', '.join(SHAPES)}")


def _is_complete(directory: str, key: str, num_images: int) -> bool:
    manifest = read_manifest(join_path(directory, MANIFEST))
    if not manifest or manifest.get("key") != key:
        return False
    try:
        names = tf.io.gfile.listdir(join_path(directory, IMAGE_DIR))
    except tf.errors.OpError:
        return False
    return len(names) == num_images and tf.io.gfile.exists(join_path(directory, ANNOTATION_FILE))
