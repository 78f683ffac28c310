"""Building a cache directory once while other processes, on this host or others, build or read it.

A cache directory (the preprocessing cache, the synthetic dataset) is complete when its manifest,
written last, is present. Trials read it on many Ray nodes at once and drivers may build it at once,
so the rules here are what keep every reader's files in place:

* A directory that holds a manifest is never removed, replaced or rebuilt by this code, even when it
  turns out damaged: a transient read failure in one worker must not delete the files that other
  workers are reading. Damage is a ``CacheError`` naming the directory and telling the user to remove
  it; removing it is the user's decision.
* A directory without a manifest is a build that did not finish, and is rebuilt.

What a concurrent build guarantees depends on the filesystem:

* Local and shared POSIX filesystems (paths without a scheme): builders of one directory take turns
  on an exclusive ``flock`` of ``NAME.lock`` beside it. The kernel drops the lock when its holder dies,
  so a killed builder never blocks the others; a waiting builder logs who holds it and, once it gets
  the lock, reuses what the holder published. A build fills a fresh ``NAME.staging-RANDOM`` directory
  and publishes it with one ``rename``, so readers see either no directory or a complete one. Under the
  lock, leftover staging directories and a final directory without a manifest belong to builds that
  died, and are removed. Across hosts this needs locks that NFS shares between clients (NFSv4, or
  NFSv3 with lockd; not ``local_lock`` mounts). Where ``flock`` fails, builds go the way below.
* gs:// and other schemes (no atomic directory rename, no lock): a build fills a fresh staging
  directory, then moves its files one by one into the final directory, the manifest last, and stops
  (discarding its copy) as soon as it sees another builder's manifest there. A reader that opened a
  manifest finds every file it lists, and nothing in the directory is ever deleted. Not guaranteed:
  two drivers starting at once both build, and if their copies overlap, files of one name replace
  each other whole (byte-identical for one key and TensorFlow version; ``open_cache``'s size check
  catches ones that are not). Staging directories of killed builds are never read and never removed
  automatically; the next builder lists them in its log so that the user can delete them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator

import tensorflow as tf

from proxy_trainer.data.coco_files import DataError, join_path

MANIFEST = "manifest.json"
STAGING = ".staging-"
LOCK = ".lock"
_LOCK_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class CacheError(DataError):
    """A complete cache (its manifest is present) that does not open or verify; the user removes it."""


def damaged(directory: str, message: str) -> CacheError:
    """A ``CacheError`` for the complete cache ``directory``: ``message`` (naming the path), then how to rebuild it."""
    return CacheError(
        f"{message}; remove {directory} to rebuild it (a complete cache is never deleted automatically: "
        "other processes may be reading it)"
    )


def is_local(path: str) -> bool:
    """Whether ``path`` is on a POSIX filesystem (no ``scheme://``), where rename and flock work."""
    return "://" not in path


def has_manifest(directory: str, manifest: str = MANIFEST) -> bool:
    """Whether ``directory`` holds its manifest, i.e. a build of it finished.

    Raises:
      DataError: the filesystem cannot tell (e.g. a gs:// error); guessing "no" would rebuild.
    """
    path = join_path(directory, manifest)
    try:
        return tf.io.gfile.exists(path)
    except tf.errors.OpError as e:
        raise DataError(f"{path}: cannot check whether the cache is complete: {e.message.splitlines()[0]}") from None


@contextlib.contextmanager
def atomic_directory(
    final: str, is_complete: Callable[[str], bool], *, manifest: str = MANIFEST,
    log: Callable[[str], None] | None = None,
) -> Iterator[str | None]:  # fmt: skip
    """Yields a fresh staging directory to fill (manifest last), or None when ``final`` is complete.

    On success the staging directory is published as ``final`` (see the module docstring for what
    that guarantees on each filesystem); on failure it is removed. ``is_complete`` is called only on
    a ``final`` that holds a manifest, and returns False or raises when it is damaged.

    Raises:
      CacheError: ``final`` holds a manifest but ``is_complete`` says it is damaged.
      DataError: the lock file or the final directory cannot be written.
    """
    log = log or _quiet
    with _build_lock(final, log) as locked:
        if has_manifest(final, manifest):
            _check(final, is_complete)
            yield None
            return
        if locked:
            _remove_stale(final, log)
        else:
            _list_stale(final, log)
        staging = f"{final.rstrip('/')}{STAGING}{uuid.uuid4().hex[:12]}"
        tf.io.gfile.makedirs(staging)
        try:
            yield staging
            if locked:
                _rename(staging, final)
            else:
                _move_files(staging, final, manifest)
        finally:
            _remove(staging)
        if has_manifest(final, manifest):  # ours, or another builder's that won
            _check(final, is_complete)


@contextlib.contextmanager
def _build_lock(final: str, log: Callable[[str], None]) -> Iterator[bool]:
    """Holds the exclusive lock ``final.lock`` (yields True), or yields False where there is none.

    The lock file is removed on release; a waiter that then holds a lock on the removed file sees
    that its inode is no longer the path's, and tries again.
    """
    if not is_local(final):
        yield False
        return
    path = f"{final.rstrip('/')}{LOCK}"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    try:
        fd = _acquire(path, final, log)
    except OSError as e:
        if e.errno not in _LOCK_UNSUPPORTED:
            raise DataError(f"{path}: cannot lock the cache build: {e.strerror}") from None
        log(f"{path}: locks are not supported here ({e.strerror}); building without one")
        fd = None
    if fd is None:
        yield False
        return
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode())
        yield True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def _acquire(path: str, final: str, log: Callable[[str], None]) -> int:
    """Waits for the exclusive flock of ``path`` (as long as its holder lives) and returns its descriptor."""
    since, delay = None, 0.05
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if since is None or time.monotonic() - since > 600:
                log(f"waiting for the process that is building {final} ({_holder(path)} holds {path})")
                since = time.monotonic()
            delay = min(2 * delay, 2.0)
            time.sleep(delay)
            continue
        except OSError:
            os.close(fd)
            raise
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        os.close(fd)  # the holder removed the file we locked on release: lock the new one


def _holder(lock_path: str) -> str:
    with contextlib.suppress(OSError), open(lock_path) as f:
        return f.read().strip() or "a process"
    return "a process"


def _check(final: str, is_complete: Callable[[str], bool]) -> None:
    if not is_complete(final):
        raise damaged(final, f"{final}: holds a manifest but is not complete")


def _siblings(final: str) -> list[str]:
    parent, name = os.path.split(final.rstrip("/"))
    try:
        names = tf.io.gfile.listdir(parent)
    except tf.errors.NotFoundError:
        return []
    return sorted(join_path(parent, n.rstrip("/")) for n in names if n.startswith(name + STAGING))


def _remove_stale(final: str, log: Callable[[str], None]) -> None:
    """Under the lock: removes what builds that died left (staging directories, a manifest-less final)."""
    for path in _siblings(final) + ([final] if tf.io.gfile.exists(final) else []):
        log(f"removing {path}: left by a build that did not finish")
        _remove(path)


def _list_stale(final: str, log: Callable[[str], None]) -> None:
    """Without a lock another builder may be using them, so staging directories are only listed."""
    stale = _siblings(final)
    if stale:
        log(f"ignoring {len(stale)} staging directories of other or killed builds of {final} (remove them "
            f"when no build is running): {', '.join(stale)}")  # fmt: skip


def _rename(staging: str, final: str) -> None:
    """Publishes ``staging`` as ``final`` with one rename(2), which fails rather than replace a full directory."""
    try:
        os.rename(staging, final)
    except OSError as e:
        if not has_manifest(final):
            raise DataError(f"{final}: cannot publish the cache built in {staging}: {e.strerror}") from None


def _move_files(staging: str, final: str, manifest: str) -> None:
    """Moves every file of ``staging`` into ``final``, the manifest last, unless another builder's appears."""
    names = []
    for directory, _, files in tf.io.gfile.walk(staging):
        relative = directory[len(staging) :].strip("/")
        names += [f"{relative}/{f}" if relative else f for f in files]
    for name in sorted(n for n in names if n != manifest) + [manifest]:
        if has_manifest(final, manifest):
            return  # another builder published first: keep its files, drop ours
        target = join_path(final, name)
        try:
            tf.io.gfile.makedirs(target.rsplit("/", 1)[0])
            tf.io.gfile.rename(join_path(staging, name), target, overwrite=name != manifest)
        except tf.errors.AlreadyExistsError:
            return  # the manifest: another builder's appeared just now
        except tf.errors.OpError as e:
            raise DataError(f"{target}: cannot publish the cache: {e.message.splitlines()[0]}") from None


def _remove(path: str) -> None:
    """Removes a staging directory (its own, or a dead build's) or a final one without a manifest."""
    with contextlib.suppress(tf.errors.OpError):
        if tf.io.gfile.exists(path):
            tf.io.gfile.rmtree(path)


def _quiet(_: str) -> None:
    pass
