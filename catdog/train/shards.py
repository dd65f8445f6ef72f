"""A disk cache of decoded images, for datasets too big to keep decoded in memory.

:func:`open_streamed` decodes a split once — the same
:func:`catdog.data.model_input.load_for_model` as the in-memory path, on a thread pool — into
sharded TFRecord files of raw ``uint8`` pixels (no re-encoding: the pixels read back are exactly the
ones decoded) under ``<data home>/cache/decoded/<key>/``, never inside the dataset itself.

* **Keyed by what the pixels depend on**: the split folder, every file's name, size and
  modification time, the class names, the image size and the record order. Any change to a
  file makes a new entry; an unchanged split is found again and nothing is decoded.
* **Written atomically**: into a hidden ``.<key>.writing-<pid>-<random>`` folder, every file
  synced, the manifest last, then renamed into place. A killed writer leaves only that hidden
  folder, which is never read and is deleted by the next writer or clean-up.
* **A training split is written in a shuffled order** (one fixed, seeded permutation of all its
  images), so that every shard holds a mix of the classes and reading a few shards at a time
  with a shuffle buffer mixes well; a validation split is written in file order.
* **Cleaned safely** (:mod:`catdog.train.cache`): a reader holds a shared lock on its entry as
  long as its datasets live, and clean-up only deletes entries nobody holds: those of datasets
  that no longer exist, then the least recently used while the cache is over its cap.

A record is 8 bytes (the image's index in file order and its label, little-endian ``int32``)
followed by the ``size × size × 3`` pixels; :func:`decode_records` reads a batch of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from catdog.data.model_input import load_or_reason
from catdog.model.backend import tf
from catdog.progress import ProgressFn, TimeLeft, report
from catdog.system import disk_full
from catdog.train import cache
from catdog.train.budget import decoded_bytes
from catdog.train.cache import CacheLease, EntryLock

FORMAT = 1  # of the records and the manifest; a new format makes new entries
HEADER_BYTES = 8  # int32 index in file order, int32 label
SHARD_BYTES = 32 * 1024 * 1024  # images are grouped into files of about this size
WRITE_ORDER_SEED = 1729  # the fixed permutation a training split is written in
WRITE_ATTEMPTS = 3  # writes of an entry before giving up, if something removes it at once


def lease(split: StreamedSplit) -> CacheLease:
    """A new shared lock on ``split``'s entry, for a dataset reading it (see
    :func:`catdog.train.pipeline.make_dataset`)."""
    return CacheLease.take(split.folder.parent, split.key)


@dataclass
class StreamedSplit:
    """One split's images decoded into the disk cache, ready for
    :func:`catdog.train.pipeline.make_dataset` (the streamed twin of ``LoadedSplit``)."""

    folder: Path  # the cache entry
    shards: list[Path]  # its record files, in written order
    labels: np.ndarray  # int32 [N], index into `classes`, of the readable files in file order
    paths: list[Path]  # file of each image, in file order
    classes: tuple[str, ...]  # class names; label k is classes[k]
    image_size: int  # side of the square images, in pixels
    shuffled: bool  # written in a fixed shuffled order (a training split) or in file order
    reused: bool  # found in the cache: nothing was decoded
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # unreadable files and why
    hold: CacheLease | None = None  # keeps the entry from being cleaned while the split lives

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def key(self) -> str:
        """The entry's cache key (its folder name)."""
        return self.folder.name


def cache_key(
    folder: Path, paths: Sequence[Path], classes: Sequence[str], image_size: int, shuffled: bool
) -> str:
    """The cache entry of these files decoded at ``image_size``: a hash of the split folder,
    every file's name, size and modification time, the classes, the size and the order."""
    head = {"format": FORMAT, "folder": str(Path(folder).resolve()), "classes": list(classes),
            "image_size": int(image_size), "shuffled": bool(shuffled)}  # fmt: skip
    digest = hashlib.sha256(json.dumps(head, sort_keys=True).encode())
    for path in paths:
        try:
            st = os.stat(path)
            stamp = f"{st.st_size}\0{st.st_mtime_ns}"
        except OSError:  # gone since the listing: decoding will skip it
            stamp = "missing"
        name = os.path.relpath(path, folder)  # as listed: no file system look-ups
        digest.update(f"{name}\0{stamp}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:32]


def open_streamed(
    folder: str | Path,
    paths: Sequence[str | Path],
    labels: Sequence[int],
    classes: Sequence[str],
    image_size: int,
    *,
    shuffled: bool,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> StreamedSplit:
    """Find a split's images in the disk cache, decoding them into it first if needed.

    Args:
        folder: the split folder (``DIR/train``) the files are listed from.
        paths: its image files, in file order.
        labels: class index of each file.
        classes: class names, label k being ``classes[k]``.
        image_size: side of the square model input, in pixels.
        shuffled: write the records in a fixed shuffled order (a training split) rather than
            in file order (validation: read back in file order, like the in-memory path).
        progress: called as ``progress(done, total, message)`` while decoding.
        workers: decoding threads (default: twice the CPU count, at most 16).

    Returns:
        A :class:`StreamedSplit`; unreadable files are left out and listed in ``skipped``
        with the reason, as :func:`catdog.train.pipeline.load_images` does.

    Raises:
        catdog.train.cache.CacheError: the disk has no room for the decoded images, or
            something removed them as soon as they were written.
    """
    folder, paths = Path(folder), [Path(p) for p in paths]
    labels = np.asarray(labels, np.int32).reshape(-1)
    key = cache_key(folder, paths, classes, image_size, shuffled)
    root = cache.cache_root()
    job = _Job(folder, paths, labels, tuple(classes), int(image_size), shuffled)
    manifest, reused, hold = _held_entry(root, key, job, progress, workers)
    cache.touch(root / key)
    if reused:
        report(progress, len(paths), len(paths), "decoded images found in the disk cache")
    else:
        cache.clean_cache(keep={key})
    return _split_from(root / key, manifest, paths, labels, tuple(classes), reused, hold)


def _held_entry(
    root: Path, key: str, job: _Job, progress: ProgressFn | None, workers: int | None
) -> tuple[dict[str, Any], bool, CacheLease]:
    """Entry ``key``'s manifest (the entry written from ``job`` first if the cache lacks it),
    whether it was found in the cache, and a lease on it.

    Readers share the entry's lock and its one writer holds it alone. Turning one kind of
    ``flock`` into the other is not atomic (the lock is let go, then taken anew), so the
    manifest is read again whenever the shared lock is taken: clean-up in another process may
    have removed the entry in between.

    Raises:
        catdog.train.cache.CacheError: the disk has no room, or the entry keeps vanishing.
    """
    lock, reused = EntryLock(root, key), True
    try:
        for _ in range(WRITE_ATTEMPTS):
            lock.take(exclusive=False)  # waits while another process writes or removes it
            if (manifest := _read_manifest(root / key, key)) is not None:
                return manifest, reused, lock.lease()
            lock.take(exclusive=True)  # one writer per entry; its readers wait
            if _read_manifest(root / key, key) is None:  # not written meanwhile
                cache.remove_leftovers(root, key)
                _write_entry(root, key, job, progress, workers)
                reused = False
    except BaseException:
        lock.close()
        raise
    lock.close()
    raise cache.CacheError(
        f"the decoded images written to {root / key} were removed at once, {WRITE_ATTEMPTS} "
        f"times; make sure no other program deletes files in {root}, then try again"
    )


def _split_from(
    entry: Path,
    manifest: dict[str, Any],
    paths: list[Path],
    labels: np.ndarray,
    classes: tuple[str, ...],
    reused: bool,
    hold: CacheLease,
) -> StreamedSplit:
    """The :class:`StreamedSplit` a manifest describes (its files: the listed ones it kept)."""
    skipped = {int(index): reason for index, reason in manifest["skipped"]}
    keep = [i for i in range(len(paths)) if i not in skipped]
    return StreamedSplit(
        folder=entry,
        shards=[entry / shard["file"] for shard in manifest["shards"]],
        labels=labels[keep],
        paths=[paths[i] for i in keep],
        classes=classes,
        image_size=int(manifest["image_size"]),
        shuffled=bool(manifest["shuffled"]),
        reused=reused,
        skipped=[(paths[i], reason) for i, reason in sorted(skipped.items())],
        hold=hold,
    )


def _read_manifest(entry: Path, key: str) -> dict[str, Any] | None:
    """The entry's manifest if the entry is complete and whole (every shard of the size it
    recorded), else None."""
    try:
        manifest = json.loads((entry / cache.MANIFEST).read_text())
        if manifest.get("format") != FORMAT or manifest.get("key") != key:
            return None
        for shard in manifest["shards"]:
            if (entry / shard["file"]).stat().st_size != shard["bytes"]:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return manifest


@dataclass(frozen=True)
class _Job:
    """What an entry is written from."""

    folder: Path
    paths: list[Path]
    labels: np.ndarray
    classes: tuple[str, ...]
    image_size: int
    shuffled: bool

    @property
    def order(self) -> np.ndarray:
        """The file indices in the order their records are written."""
        n = len(self.paths)
        if not self.shuffled:
            return np.arange(n)
        return np.random.default_rng(WRITE_ORDER_SEED).permutation(n)


def _write_entry(
    root: Path, key: str, job: _Job, progress: ProgressFn | None, workers: int | None
) -> None:
    """Decode ``job`` into a hidden folder, then rename it into place as entry ``key``. The
    caller holds the entry's exclusive lock."""
    need = decoded_bytes(len(job.paths), job.image_size)
    cache.check_space(root, need, len(job.paths))
    work = cache.work_folder(root, key)
    try:
        shards, skipped = _write_shards(work, job, progress, workers)
        manifest = {
            "format": FORMAT,
            "key": key,
            "folder": str(job.folder.resolve()),
            "classes": list(job.classes),
            "image_size": job.image_size,
            "shuffled": job.shuffled,
            "files": len(job.paths),
            "images": len(job.paths) - len(skipped),
            "shards": shards,
            "skipped": skipped,
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        cache.write_synced(work / cache.MANIFEST, json.dumps(manifest, indent=1).encode())
        cache.sync_folder(work)
        os.rename(work, root / key)
        cache.sync_folder(root)
    except BaseException as exc:
        shutil.rmtree(work, ignore_errors=True)
        if disk_full(exc):
            raise cache.CacheError(cache.space_message(root, need, len(job.paths))) from exc
        raise


def _write_shards(
    work: Path, job: _Job, progress: ProgressFn | None, workers: int | None
) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """Decode the images in write order into shard files in ``work``; returns the shards
    (``{file, images, bytes}``) and the skipped files (``[index, reason]``, by index)."""
    record_bytes = HEADER_BYTES + job.image_size**2 * 3
    per_shard = max(1, SHARD_BYTES // record_bytes)
    order = job.order
    shards: list[dict[str, Any]] = []
    skipped: list[list[Any]] = []
    writer, count, time_left = None, 0, TimeLeft()
    decoded = _decoded_in_order([job.paths[i] for i in order], job.image_size, workers)
    try:
        for done, (index, result) in enumerate(zip(order, decoded, strict=True), start=1):
            if isinstance(result, str):
                skipped.append([int(index), result])
            else:
                if writer is None or count == per_shard:
                    _finish_shard(writer, work, shards, count)
                    shards.append({"file": f"shard-{len(shards):05d}.tfrecord"})
                    writer, count = tf.io.TFRecordWriter(str(work / shards[-1]["file"])), 0
                header = np.array([index, job.labels[index]], "<i4").tobytes()
                writer.write(header + result.tobytes())
                count += 1
            message = f"decoding {job.paths[index].name} into the disk cache"
            report(progress, done, len(order), time_left.message(message, done, len(order)))
        _finish_shard(writer, work, shards, count)
    except BaseException:
        # A failed write (a full disk, say) lets its file go at once: an open file, even one
        # deleted, keeps its disk space taken for as long as the error is kept.
        with contextlib.suppress(Exception):
            if writer is not None:
                writer.close()
        decoded.close()  # stops the decoding threads
        raise
    skipped.sort()
    return shards, skipped


def _finish_shard(writer: Any, work: Path, shards: list[dict[str, Any]], count: int) -> None:
    """Close the shard being written (if any), sync it, and record its count and size."""
    if writer is None:
        return
    writer.close()
    path = work / shards[-1]["file"]
    with open(path, "rb") as written:
        os.fsync(written.fileno())
    shards[-1].update(images=count, bytes=path.stat().st_size)


def _decoded_in_order(
    paths: list[Path], image_size: int, workers: int | None
) -> Iterator[np.ndarray | str]:
    """Each file decoded (an array) or why not (a string), in order, decoding a few ahead on
    a thread pool (Pillow releases the GIL) but never holding more than a window of them."""

    def decode(path: Path) -> np.ndarray | str:
        return load_or_reason(path, image_size)

    workers = workers or min(16, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future] = deque()
        upcoming = iter(paths)
        for path in upcoming:
            pending.append(pool.submit(decode, path))
            if len(pending) >= 4 * workers:
                break
        while pending:
            result = pending.popleft().result()
            path = next(upcoming, None)
            if path is not None:
                pending.append(pool.submit(decode, path))
            yield result


def decode_records(serialized: tf.Tensor, image_size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """A batch of records back into pixels and labels.

    Args:
        serialized: string tensor ``[B]`` of records from a :class:`StreamedSplit`'s shards.
        image_size: the split's image side.

    Returns:
        ``(pixels, labels)``: uint8 ``[B, S, S, 3]`` and int32 ``[B]``.
    """
    header = tf.io.decode_raw(tf.strings.substr(serialized, 0, HEADER_BYTES), tf.int32,
                              little_endian=True)  # fmt: skip
    pixels = tf.io.decode_raw(tf.strings.substr(serialized, HEADER_BYTES, image_size**2 * 3),
                              tf.uint8)  # fmt: skip
    return tf.reshape(pixels, [-1, image_size, image_size, 3]), header[:, 1]
