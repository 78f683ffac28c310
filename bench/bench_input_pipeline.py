"""Images/s of the proxy's input pipeline per CPU core, with and without the preprocessing cache.

Generates a COCO-like synthetic dataset (JPEGs of 480..640 px per side, as COCO's, objects of 10-50%
of the shorter side), then times the training pipeline at the proxy's 512 input (decode, flip, scale
jitter [0.5, 2.0], crop, normalise, pad, batch) in three variants measured in one run, interleaved:
reading the original JPEGs, the JPEG cache, and the raw-pixel cache; then the JPEG cache again with
the trainer's host anchor labelling (``AnchorLabeler`` at the default anchors, 90 classes) as
``label_fn`` (``trainer.anchor_labeling=host``, the CPU default), and with only the class check that
remains on the host when the training step labels (``anchor_labeling=device``, the GPU default).
The process is pinned to ``--cores`` CPU cores (default 1) and tf.data to as many threads, so the
numbers are per core.

    python bench/bench_input_pipeline.py [--cores=1] [--images=160] [--batches=12] [--rounds=3]

Writes ``bench/results/input_pipeline.json`` (``--output``; ``--output=`` writes nothing), from which
the README's figures are rendered (``bench/readme_results.py``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench import results_io  # noqa: E402

VARIANTS = {  # result key -> printed name
    "no_cache": "no cache (decode original JPEGs)",
    "jpeg_cache": "cache, JPEG q95 at 512",
    "raw_cache": "cache, raw pixels at 512",
    "jpeg_cache_host_labelling": "cache, JPEG + host labelling",
    "jpeg_cache_device_labelling": "cache, JPEG + device labelling",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=1, help="CPU cores the pipeline may use")
    parser.add_argument("--images", type=int, default=160, help="synthetic 640x480-like images to generate")
    parser.add_argument("--input_size", type=int, default=512, help="proxy input resolution")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=12, help="timed batches per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved measurements per variant (median)")
    parser.add_argument("--cache_dir", default="", help="where data and caches go (default: a temporary dir)")
    parser.add_argument("--output", default=results_io.path("input_pipeline"), help="result file ('': none)")
    args = parser.parse_args()
    run = results_io.start()

    if hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0))
        if args.cores > len(available):
            sys.exit(f"--cores={args.cores}: only {len(available)} cores are available")
        os.sched_setaffinity(0, available[: args.cores])

    import tensorflow as tf

    from proxy_trainer.data.config import DataConfig, SyntheticConfig
    from proxy_trainer.data.pipeline import prepare_data
    from proxy_trainer.detector.anchor_labeler import AnchorLabeler
    from proxy_trainer.detector.anchors import Anchors

    tf.config.threading.set_inter_op_parallelism_threads(args.cores)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="bench_input_")
    synthetic = SyntheticConfig(
        num_images=args.images, image_size=(480, 640), object_size=(0.1, 0.5), max_objects=6, seed=0, jpeg_quality=90
    )
    base = DataConfig(
        source="synthetic",
        synthetic=synthetic,
        holdout_size=8,
        cache_dir=cache_dir,
        num_parallel_calls=args.cores,
        shuffle_buffer=64,
    )
    start = time.perf_counter()
    prepare_data(DataConfig(**{**base.__dict__, "use_cache": False}), args.input_size)
    print(f"generated {args.images} synthetic images (480..640 px) in {time.perf_counter() - start:.1f} s")

    variants = {
        "no cache (decode original JPEGs)": DataConfig(**{**base.__dict__, "use_cache": False}),
        "cache, JPEG q95 at 512": DataConfig(**{**base.__dict__, "cache_image_format": "jpeg"}),
        "cache, raw pixels at 512": DataConfig(**{**base.__dict__, "cache_image_format": "raw"}),
    }
    options = tf.data.Options()
    options.threading.private_threadpool_size = args.cores
    options.threading.max_intra_op_parallelism = 1
    options.autotune.cpu_budget = args.cores
    prepared = {}
    for name, config in variants.items():
        start = time.perf_counter()
        prepared[name] = (prepare_data(config, args.input_size), None)
        if config.use_cache:
            print(f"built cache [{name}] in {time.perf_counter() - start:.1f} s ({args.cores} core(s))")
    labeller = AnchorLabeler(Anchors(args.input_size), num_classes=90)
    prepared["cache, JPEG + host labelling"] = (prepared["cache, JPEG q95 at 512"][0], labeller)
    prepared["cache, JPEG + device labelling"] = (prepared["cache, JPEG q95 at 512"][0], labeller.check_classes)

    # One pipeline at a time (a live iterator keeps prefetching in the background), interleaved.
    rates: dict[str, list[float]] = {name: [] for name in prepared}
    for round_index in range(args.rounds):
        for name, (data, label_fn) in prepared.items():
            dataset = data.train_dataset(args.batch_size, seed=round_index, label_fn=label_fn)
            iterator = iter(dataset.with_options(options))
            for _ in range(3):  # warm up: trace functions, fill the shuffle buffer
                next(iterator)
            start = time.perf_counter()
            for _ in range(args.batches):
                next(iterator)["image"].numpy()
            rates[name].append(args.batches * args.batch_size / (time.perf_counter() - start))
            del iterator

    print(f"\ntraining pipeline at {args.input_size}x{args.input_size}, batch {args.batch_size}, {args.cores} core(s), "
          f"median of {args.rounds} rounds x {args.batches} batches")  # fmt: skip
    reference = statistics.median(rates["no cache (decode original JPEGs)"])
    print(f"{'variant':<36} {'images/s':>9} {'per core':>9} {'vs no cache':>12}")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"{name:<36} {rate:>9.1f} {rate / args.cores:>9.1f} {rate / reference:>11.2f}x")
    if args.output:
        settings = {k: getattr(args, k) for k in ("cores", "images", "input_size", "batch_size", "batches", "rounds")}
        figures = {
            "settings": settings,
            "seeds": [0],  # the synthetic images; round r shuffles with seed r
            "images_per_s": {key: rates[name] for key, name in VARIANTS.items()},
            "median_images_per_s_per_core": {
                key: statistics.median(rates[name]) / args.cores for key, name in VARIANTS.items()
            },
        }
        print(f"wrote {results_io.write(args.output, run, figures)}")


if __name__ == "__main__":
    main()
