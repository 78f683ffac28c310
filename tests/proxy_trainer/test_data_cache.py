"""The one-time preprocessing cache (proxy_trainer.data.cache): build, reuse, bad data, damage, concurrency."""

import json
import os
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from nas.user_errors import is_user_error, one_line
from proxy_trainer.data import cache as preprocess_cache
from proxy_trainer.data import publish as cache_publish
from proxy_trainer.data.cache import CacheError, ensure_cache, open_cache, parse_record, verify_cache
from proxy_trainer.data.coco_files import DataError, load_coco
from proxy_trainer.data.config import DataConfig, SyntheticConfig
from proxy_trainer.data.synthetic import ensure_synthetic_coco

SIZE = 64  # the input resolution the cache is built for
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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


def snapshot(root):
    """Every file under ``root`` with its bytes and inode (a replaced file gets another inode)."""
    files = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            files[os.path.relpath(path, root)] = (open(path, "rb").read(), os.stat(path).st_ino)
    return files


def break_by(kind, cache):
    shard = cache.train.shard_paths[0]
    manifest = os.path.join(cache.directory, "manifest.json")
    data = json.load(open(manifest))
    if kind == "missing shard":
        os.remove(shard)
    elif kind == "truncated shard":
        with open(shard, "r+b") as f:
            f.truncate(os.path.getsize(shard) - 7)
    elif kind == "garbled manifest":
        with open(manifest, "w") as f:
            f.write('{"format_version": 1, "key')
    elif kind == "manifest without splits":
        del data["splits"]
        json.dump(data, open(manifest, "w"))
    elif kind == "manifest of other data":  # its key matches, its shard sizes do not
        data["splits"]["holdout"]["shards"][0]["bytes"] += 100
        json.dump(data, open(manifest, "w"))


@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing shard", r"is corrupt: train-00000-of-00002.tfrecord is missing"),
        ("truncated shard", r"is corrupt: train-00000-of-00002.tfrecord has \d+ bytes, expected \d+"),
        ("garbled manifest", r"manifest.json: cache manifest is not valid JSON"),
        ("manifest without splits", r"has a malformed manifest.json: KeyError 'splits'"),
        ("manifest of other data", r"is corrupt: holdout-00000-of-00001.tfrecord has \d+ bytes, expected \d+"),
    ],
)
def test_a_damaged_complete_cache_is_an_error_and_is_never_deleted(source, tmp_path, kind, message):
    cfg = config(tmp_path)
    cache = ensure_cache(*source, cfg, SIZE)
    break_by(kind, cache)
    before = snapshot(tmp_path)
    for attempt in (lambda: open_cache(cache.directory), lambda: ensure_cache(*source, cfg, SIZE)):
        with pytest.raises(CacheError, match=message) as caught:
            attempt()
        text = one_line(caught.value)
        assert text.startswith(cache.directory) and f"remove {cache.directory} to rebuild it" in text
        assert is_user_error(caught.value)  # one line on stderr, exit status 2
        assert snapshot(tmp_path) == before  # nothing deleted, replaced or added


def test_an_incomplete_cache_is_rebuilt_and_a_dead_build_is_cleaned_up(source, tmp_path):
    cfg = config(tmp_path)
    cache = ensure_cache(*source, cfg, SIZE)
    os.remove(os.path.join(cache.directory, "manifest.json"))  # the build was killed before its manifest
    with pytest.raises(DataError, match=r"preprocessing cache is incomplete: no manifest.json"):
        open_cache(cache.directory)
    dead = f"{cache.directory}.staging-0123456789ab"  # a killed build's staging directory
    os.makedirs(dead)
    open(os.path.join(dead, "train-00000-of-00002.tfrecord"), "wb").write(b"partial")
    logs = []
    rebuilt = ensure_cache(*source, cfg, SIZE, logs.append)
    assert rebuilt == cache and cache_dirs(tmp_path) == [os.path.basename(cache.directory)]
    assert os.listdir(tmp_path) == [os.path.basename(cache.directory)]  # no staging directory or lock left
    assert any(dead in m and "did not finish" in m for m in logs)
    verify_cache(rebuilt)


def run_ensure_cache(source, cache_dir, *, go=None, ready=None):
    """Starts another OS process that calls ensure_cache (after ``go`` exists) and prints JSON."""
    args = {
        "root": ROOT, "source": list(source), "config": dict(annotation_file="x", image_dir="x", holdout_size=6,
        cache_dir=str(cache_dir), cache_shard_size=10), "size": SIZE, "go": go, "ready": ready,
    }  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(
        [sys.executable, "-c", ENSURE_CACHE, json.dumps(args)], stdout=subprocess.PIPE, env=env, text=True
    )


ENSURE_CACHE = """
import json, os, sys, time
args = json.loads(sys.argv[1])
sys.path.insert(0, args["root"])
from proxy_trainer.data.config import DataConfig
from proxy_trainer.data.cache import ensure_cache
if args["ready"]:
    open(args["ready"], "w").close()
while args["go"] and not os.path.exists(args["go"]):
    time.sleep(0.005)
logs = []
try:
    cache = ensure_cache(*args["source"], DataConfig(**args["config"]), args["size"], logs.append)
    print(json.dumps({"directory": cache.directory, "logs": logs}))
except Exception as e:
    print(json.dumps({"error": f"{type(e).__name__}: {e}", "logs": logs}))
"""


def result_of(process):
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0
    return json.loads(out.strip().splitlines()[-1])


def test_two_processes_building_at_once_share_one_complete_cache(source, tmp_path):
    go = str(tmp_path / "go")
    ready = [str(tmp_path / f"ready-{i}") for i in range(2)]
    root = tmp_path / "cache"
    processes = [run_ensure_cache(source, root, go=go, ready=r) for r in ready]
    deadline = time.monotonic() + 120
    while not all(os.path.exists(r) for r in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    open(go, "w").close()  # both have imported TensorFlow: start them together
    results = [result_of(p) for p in processes]
    assert [r.get("error") for r in results] == [None, None]
    directories = {r["directory"] for r in results}
    assert len(directories) == 1
    builds = [m for r in results for m in r["logs"] if m.startswith("building the preprocessing cache")]
    assert len(builds) == 1  # one built, the other waited and reused it
    assert os.listdir(root) == [os.path.basename(directories.pop())]  # no staging directory or lock left
    cache = ensure_cache(*source, config(root), SIZE)
    verify_cache(cache)
    assert (cache.train.num_examples, cache.holdout.num_examples) == (18, 6)


def test_a_readers_files_stay_while_another_process_ensures_the_cache(source, tmp_path):
    cache = ensure_cache(*source, config(tmp_path), SIZE)
    reader = iter(tf.data.TFRecordDataset(list(cache.train.shard_paths + cache.holdout.shard_paths)))
    seen = [next(reader)]
    before = snapshot(tmp_path)
    assert result_of(run_ensure_cache(source, tmp_path)) == {"directory": cache.directory, "logs": []}
    manifest = os.path.join(cache.directory, "manifest.json")
    good = open(manifest, "rb").read()
    open(manifest, "wb").write(b"{")  # what a failed read (e.g. on gs://) looks like to the other process
    other = result_of(run_ensure_cache(source, tmp_path))
    assert other["error"].startswith(f"CacheError: {manifest}: cache manifest is not valid JSON")
    open(manifest, "wb").write(good)
    seen += list(reader)
    assert len(seen) == 24  # the reader read every record of the files it opened
    assert snapshot(tmp_path) == before  # same files, same inodes


def test_a_waiting_builder_leaves_a_live_builders_staging_alone(source, tmp_path):
    cfg = config(tmp_path)
    directory = os.path.join(str(tmp_path), "coco-" + preprocess_cache.cache_key(
        *source, holdout_size=6, split_seed=0, input_size=SIZE, image_format="jpeg", box_tolerance=1.0))  # fmt: skip
    logs, result = [], {}
    with cache_publish._build_lock(directory, print) as locked:  # a live builder in its staging directory
        assert locked
        live = f"{directory}.staging-live00000000"
        os.makedirs(live)
        waiter = threading.Thread(target=lambda: result.update(cache=ensure_cache(*source, cfg, SIZE, logs.append)))
        waiter.start()
        waiter.join(timeout=3)
        assert waiter.is_alive() and os.path.isdir(live)  # it waits and touches nothing
        assert any(m.startswith(f"waiting for the process that is building {directory}") for m in logs)
        assert f"process {os.getpid()} on" in logs[0]
    waiter.join(timeout=120)  # the "live builder" stopped without publishing: its staging is stale now
    assert result["cache"].directory == directory and os.listdir(tmp_path) == [os.path.basename(directory)]


def test_without_atomic_rename_a_published_directory_is_never_replaced(tmp_path, monkeypatch):
    """The gs:// way (no lock, files moved one by one): a builder that finishes second keeps the first's."""
    monkeypatch.setattr(cache_publish, "is_local", lambda path: False)
    final = str(tmp_path / "d")
    dead = tmp_path / "d.staging-dead00000000"
    dead.mkdir()

    def fill(directory, text):
        os.makedirs(os.path.join(directory, "sub"))
        open(os.path.join(directory, "sub", "a.txt"), "w").write(text)
        open(os.path.join(directory, "manifest.json"), "w").write(text)

    logs = []
    complete = lambda d: open(os.path.join(d, "manifest.json")).read() in ("first", "second")  # noqa: E731
    with cache_publish.atomic_directory(final, complete, log=logs.append) as second:
        fill(second, "second")
        with cache_publish.atomic_directory(final, complete) as first:
            fill(first, "first")
        published = snapshot(final)
    assert snapshot(final) == published and published["sub/a.txt"][0] == b"first"
    assert sorted(os.listdir(tmp_path)) == ["d", dead.name]  # both staging copies gone; a dead one is only listed
    assert any(str(dead) in m for m in logs)
    with cache_publish.atomic_directory(final, complete) as again:
        assert again is None
    open(os.path.join(final, "manifest.json"), "w").write("damaged")
    with pytest.raises(CacheError, match=rf"{re.escape(final)}: holds a manifest but is not complete; remove "):
        with cache_publish.atomic_directory(final, complete):
            pass
    assert os.path.isfile(os.path.join(final, "sub", "a.txt"))


def test_flipped_bytes_in_a_shard_fail_verification(source, tmp_path):
    cache = ensure_cache(*source, config(tmp_path), SIZE)
    shard = cache.holdout.shard_paths[0]
    with open(shard, "r+b") as f:
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 0xFF]))
    open_cache(cache.directory)  # same size: the manifest check cannot see it
    with pytest.raises(CacheError, match=r"holdout-00000-of-00001.tfrecord: cache shard is corrupt: .*; remove "):
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
