"""Fast tf.data input pipelines: decode every image once, then batch, augment and rescale.

:func:`load_split` decodes and resizes a split's photos once
(``catdog.data.model_input.load_for_model``, the same preprocessing prediction uses) in a thread
pool — Pillow releases the GIL while it decodes — and keeps them as one ``uint8`` array: 4,000
images at 150 px take 270 MB.

:func:`make_dataset` then builds, per epoch: shuffle the image *indices* (seeded, new order each
epoch) → batch → gather the batch's pixels → augment the whole batch on the fly in parallel
(:func:`catdog.train.warp.augment_images`, a stateless seed per batch so runs are reproducible and
every batch and epoch differs) and rescale to [0, 1] like the seed's ``rescale=1./255``, in
one compiled pass → prefetch. Shuffling indices instead of images, and reading each batch's
rows straight from the NumPy array (``tf.numpy_function``), keeps ONE copy of the pixels in
memory: no copy into TensorFlow (``tf.constant`` would hold two more, a ``tf.Variable`` one),
no graph constant and no 2 GB limit; the fancy-indexing costs ~0.5 ms of CPU per batch of 32.

Datasets of any size: :func:`open_splits` (what training calls) measures the decoded size of the
splits (N images × size² × 3 bytes) against the memory budget (:mod:`catdog.train.budget`).
Within it, the splits are decoded into memory as above; over it, each split is decoded once into
a disk cache of sharded TFRecord files (:mod:`catdog.train.shards`, reused by later runs) and
:func:`make_dataset` streams it: the training shards in a seeded random order, a few read in
parallel (interleaved), through a shuffle buffer, into the same batching, augmentation and
rescaling as the in-memory path. See :func:`make_dataset` for what is and is not identical.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from catdog.data.datasets import labelled_images
from catdog.data.model_input import load_or_reason
from catdog.model.backend import tf
from catdog.model.pixels import PIXEL_SCALE, scale_pixels
from catdog.progress import ProgressFn, report
from catdog.train import shards
from catdog.train.augment import AugmentConfig
from catdog.train.budget import (
    InputChoice,
    choose_input,
    decoded_bytes,
    human_bytes,
    memory_budget,
)
from catdog.train.shards import StreamedSplit
from catdog.train.warp import augment_images

LABEL_MODES = ("binary", "categorical")

# Batches prepared in parallel and kept ready ahead of the model: fixed, not autotuned.
PARALLEL_BATCHES = max(2, min(os.cpu_count() or 2, 8))
PREFETCH_BATCHES = 2
# Streaming: shard files read at once (interleaved, each in its own thread), and the shuffle
# buffer's share of the memory budget (in images: at least 128, at most 10,000).
READ_SHARDS = 4
SHUFFLE_BUFFER_SHARE = 0.25
SHUFFLE_BUFFER_IMAGES = (128, 10_000)


def pipeline_options() -> tf.data.Options:
    """tf.data options without the autotuner.

    An autotuned pipeline runs a model-optimisation thread, and destroying its iterator (Keras
    makes one per epoch for training and one for validation) waits for that thread: measured
    here, about half of all iterator teardowns stalled ~1.1 s with the CPU idle, which made
    whole epochs up to ~40% slower at random. Two workers and two prefetched batches keep a
    2-core machine busy (``python benchmarks/throughput.py``).
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


@dataclass
class LoadedSplit:
    """One split's images decoded into memory, ready for :func:`make_dataset`."""

    images: np.ndarray  # uint8 [N, S, S, 3], pixel values 0–255
    labels: np.ndarray  # int32 [N], index into `classes`
    paths: list[Path]  # file of each image, in the same order
    classes: tuple[str, ...]  # class names; label k is classes[k]
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # unreadable files and why

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_size(self) -> int:
        """Side of the square images, in pixels."""
        return int(self.images.shape[1])


def load_split(
    root: str | Path,
    split: str,
    classes: Sequence[str] | None = None,
    image_size: int = 150,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> LoadedSplit:
    """Decode and resize every image of ``root/split/<class>/`` into memory.

    Args:
        root: dataset folder holding ``train``, ``validation`` and ``test`` folders.
        split: which of them to load.
        classes: class folder names in label order; None takes the sub-folders of
            ``root/split`` sorted by name (as Keras' ``flow_from_directory``).
        image_size: side of the square model input, in pixels.
        progress: called as ``progress(done, total, message)`` while decoding.
        workers: decoding threads (default: twice the CPU count, at most 16).

    Returns:
        A :class:`LoadedSplit`; files that cannot be decoded are left out and listed in
        ``skipped`` with the reason, not raised.

    Raises:
        FileNotFoundError: ``root/split`` or one of the class folders does not exist.
    """
    _, classes, paths, labels = _listed(root, split, classes)
    return load_images(paths, labels, classes, image_size, progress=progress, workers=workers)


def _listed(
    root: str | Path, split: str, classes: Sequence[str] | None
) -> tuple[Path, list[str], list[Path], list[int]]:
    """The split folder, its classes (as :func:`load_split` takes them) and its labelled files.

    Raises:
        FileNotFoundError: ``root/split`` or one of the class folders does not exist.
    """
    folder = Path(root) / split
    if not folder.is_dir():
        present = (
            sorted(p.name for p in Path(root).iterdir() if p.is_dir())
            if Path(root).is_dir()
            else []
        )
        raise FileNotFoundError(
            f"no {split!r} folder in {root}: found {present or 'nothing'}; "
            "a dataset needs train/validation/test folders of class folders"
        )
    if classes is None:
        classes = sorted(
            p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
    missing = [c for c in classes if not (folder / c).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"class folder(s) {', '.join(missing)} missing in {folder}; "
            f"it holds {sorted(p.name for p in folder.iterdir())}"
        )
    paths, labels = labelled_images(folder, classes)
    return folder, list(classes), paths, labels


def load_images(
    paths: Sequence[str | Path],
    labels: Sequence[int],
    classes: Sequence[str],
    image_size: int = 150,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> LoadedSplit:
    """Decode and resize a list of labelled image files into memory (see :func:`load_split`).

    Args:
        paths: image files.
        labels: class index of each file.
        classes: class names, label k being ``classes[k]``.
        image_size: side of the square model input, in pixels.
        progress: called as ``progress(done, total, message)`` while decoding.
        workers: decoding threads (default: twice the CPU count, at most 16).

    Returns:
        A :class:`LoadedSplit` of the readable files, in the given order.
    """
    paths = [Path(p) for p in paths]
    if len(paths) != len(labels):
        raise ValueError(f"got {len(paths)} paths but {len(labels)} labels; give one label each")
    bad = sorted({int(k) for k in labels} - set(range(len(classes))))
    if bad:
        raise ValueError(f"labels {bad} are not indices into the {len(classes)} classes {classes}")
    images = np.empty((len(paths), image_size, image_size, 3), np.uint8)
    keep = np.zeros(len(paths), bool)
    skipped: list[tuple[Path, str]] = []

    def decode(path: Path) -> np.ndarray | str:
        return load_or_reason(path, image_size)

    workers = workers or min(16, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, result in enumerate(pool.map(decode, paths)):
            if isinstance(result, str):
                skipped.append((paths[i], result))
            else:
                images[i], keep[i] = result, True
            report(progress, i + 1, len(paths), f"decoding {paths[i].name}")
    if not keep.all():  # drop the unreadable rows (a copy, only when some were skipped)
        images = images[keep]
    return LoadedSplit(
        images=images,
        labels=np.asarray(labels, np.int32).reshape(-1)[keep],
        paths=[p for p, k in zip(paths, keep, strict=True) if k],
        classes=tuple(classes),
        skipped=skipped,
    )


@dataclass
class OpenedSplits:
    """The splits a run trains and validates on, and how they are held (see :func:`open_splits`)."""

    splits: list[LoadedSplit | StreamedSplit]  # in the order asked for
    choice: InputChoice  # in memory or streamed, and why

    @property
    def summary(self) -> str:
        """One line for people: the choice, whether the disk cache was reused, skipped files."""
        parts = [self.choice.reason]
        streamed = [s for s in self.splits if isinstance(s, StreamedSplit)]
        decoded = [s for s in streamed if not s.reused]
        if decoded:  # the size of what was decoded now, not of what was found
            size = human_bytes(sum(decoded_bytes(len(s), s.image_size) for s in decoded))
            found = "; the rest reused from it" if len(decoded) < len(streamed) else ""
            parts.append(f"decoded into the disk cache ({size}){found}")
        elif streamed:
            parts.append("decoded images reused from the disk cache")
        skipped = sum(len(s.skipped) for s in self.splits)
        if skipped:
            parts.append(f"{skipped} unreadable file{'s' if skipped != 1 else ''} skipped")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, object]:
        """What a run's ``config.json`` records of it (plain JSON values)."""
        streamed = [s for s in self.splits if isinstance(s, StreamedSplit)]
        return self.choice.to_dict() | {
            "summary": self.summary,
            "cache": [{"key": s.key, "reused": s.reused} for s in streamed],
            "skipped": sum(len(s.skipped) for s in self.splits),
        }


def open_splits(
    root: str | Path,
    splits: Sequence[str],
    classes: Sequence[str] | None = None,
    image_size: int = 150,
    progress: ProgressFn | None = None,
) -> OpenedSplits:
    """Open splits for training: decoded into memory if they fit the memory budget, else
    decoded once into the disk cache and streamed from it.

    The decision is made once for all of ``splits`` together (they are held at the same time),
    from their decoded size: files × ``image_size``² × 3 bytes, against
    :func:`catdog.train.budget.memory_budget`. A streamed ``train`` split is written in a
    shuffled order; any other in file order.

    Args:
        root: dataset folder holding the split folders.
        splits: which splits, e.g. ``("train", "validation")``.
        classes: class folder names in label order; None takes ``root/splits[0]``'s sorted.
        image_size: side of the square model input, in pixels.
        progress: called as ``progress(done, total, message)`` while decoding.

    Returns:
        :class:`OpenedSplits`: a :class:`LoadedSplit` or a
        :class:`~catdog.train.shards.StreamedSplit` per split, and the choice made.

    Raises:
        FileNotFoundError: a split folder or a class folder does not exist.
        catdog.train.budget.BudgetError: ``CATDOG_MEMORY_BUDGET_MB`` is not a number.
        catdog.train.cache.CacheError: streaming, and the disk has no room for the cache.
    """
    listed = []
    for split in splits:
        listed.append(_listed(root, split, classes))
        classes = listed[-1][1]
    choice = choose_input(sum(len(paths) for _, _, paths, _ in listed), image_size)
    opened: list[LoadedSplit | StreamedSplit] = []
    for split, (folder, names, paths, labels) in zip(splits, listed, strict=True):
        if choice.streaming:
            shuffled = split == "train"
            opened.append(shards.open_streamed(folder, paths, labels, names, image_size,
                                               shuffled=shuffled, progress=progress))  # fmt: skip
        else:
            opened.append(load_images(paths, labels, names, image_size, progress=progress))
    return OpenedSplits(opened, choice)


def make_dataset(
    loaded: LoadedSplit | StreamedSplit,
    *,
    batch_size: int,
    shuffle: bool,
    augment: AugmentConfig | None,
    seed: int = 0,
    label_mode: str = "binary",
) -> tf.data.Dataset:
    """Build the batches a model trains or evaluates on.

    Training: ``shuffle=True, augment=AugmentConfig()``. Validation and test:
    ``shuffle=False, augment=None``, so they are seen unchanged, in file order. The last batch
    may be smaller.

    A streamed split (:class:`~catdog.train.shards.StreamedSplit`) goes through the same
    batching, augmentation and rescaling. Unshuffled, it yields exactly the batches the
    in-memory path does (a validation split is cached in file order). Shuffled, every epoch
    still holds every image exactly once, and the same seed replays the same epochs, batch for
    batch, with the same augmentation seed per batch as in memory; but the order is not the
    in-memory path's full permutation: each epoch reads the shards (written in one fixed
    random permutation) in a seeded random order, a few interleaved, through a shuffle buffer.

    Args:
        loaded: images from :func:`load_split` or :func:`open_splits`.
        batch_size: images per batch.
        shuffle: reshuffle the order every epoch (seeded).
        augment: transforms applied on the fly to every batch; None or an off config for none.
        seed: fixes the shuffling and the augmentation: the same seed replays the same epochs.
        label_mode: "binary" (float32 ``[B, 1]`` of 0/1, needs 2 classes; for a sigmoid
            output) or "categorical" (one-hot float32 ``[B, K]``; for a softmax output).

    Returns:
        A ``tf.data.Dataset`` of ``(images, labels)``, images float32 ``[B, S, S, 3]`` in
        [0, 1].
    """
    check_split(loaded, batch_size, label_mode)
    if augment is not None:
        augment.validate()
    if isinstance(loaded, StreamedSplit):
        return _streamed_dataset(loaded, batch_size, shuffle, augment, seed, label_mode)
    gather = _batch_reader(loaded)
    targets = split_targets(loaded, label_mode)
    batches = index_batches(len(loaded), batch_size, shuffle, seed)

    def read(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return gather(index), tf.gather(targets, index)

    return _prepared(batches, read, augment, seed)


def _prepared(
    batches: tf.data.Dataset,
    read: Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]],
    augment: AugmentConfig | None,
    seed: int,
) -> tf.data.Dataset:
    """Batches (of whatever ``read`` turns into uint8 pixels and targets) augmented and
    rescaled in parallel, in order, and prefetched: the part both paths share."""
    if augment is not None and augment.enabled:
        # One stateless seed per batch from a seeded stream that changes every epoch: batches
        # and epochs differ, and the same seed replays them even under a parallel map (Keras'
        # stock random layers update a shared state there, in a non-reproducible order).
        seeds = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True).batch(2)

        def load(item: tf.Tensor, batch_seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            pixels, targets = read(item)
            # uint8 in, [0, 1] float32 out: scaling is part of the one pass
            return augment_images(pixels, augment, batch_seed, scale=PIXEL_SCALE), targets

        dataset = tf.data.Dataset.zip(batches, seeds)
    else:

        def load(item: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            pixels, targets = read(item)
            return scale_pixels(pixels), targets

        dataset = batches
    dataset = dataset.map(load, num_parallel_calls=PARALLEL_BATCHES, deterministic=True)
    return dataset.prefetch(PREFETCH_BATCHES).with_options(pipeline_options())


def _streamed_dataset(
    split: StreamedSplit,
    batch_size: int,
    shuffle: bool,
    augment: AugmentConfig | None,
    seed: int,
    label_mode: str,
) -> tf.data.Dataset:
    """:func:`make_dataset` for a split in the disk cache."""
    files = tf.data.Dataset.from_tensor_slices([str(path) for path in split.shards])
    if shuffle:
        # A new seeded shard order each epoch; a few shards read at once, each in its own
        # thread, one record from each in turn; then a seeded shuffle buffer.
        files = files.shuffle(len(split.shards), seed=seed, reshuffle_each_iteration=True)
        cycle = min(READ_SHARDS, len(split.shards))
        records = files.interleave(tf.data.TFRecordDataset, cycle_length=cycle, block_length=1,
                                   num_parallel_calls=cycle, deterministic=True)  # fmt: skip
        records = records.shuffle(shuffle_buffer(split), seed=seed + 2,
                                  reshuffle_each_iteration=True)  # fmt: skip
    else:
        records = tf.data.TFRecordDataset(files)  # the shards one after the other
    # The count is known (Keras then sizes epochs as in memory), and checked while reading.
    records = records.apply(tf.data.experimental.assert_cardinality(len(split)))
    size, classes = split.image_size, len(split.classes)

    def read(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        pixels, labels = shards.decode_records(serialized, size)
        if label_mode == "binary":
            return pixels, tf.cast(labels, tf.float32)[:, None]
        return pixels, tf.one_hot(labels, classes, dtype=tf.float32)

    dataset = _prepared(records.batch(batch_size), read, augment, seed)
    # The cache entry stays (clean-up leaves it alone) as long as the dataset lives.
    weakref.finalize(dataset, shards.lease(split).release)
    return dataset


def shuffle_buffer(split: StreamedSplit) -> int:
    """Images the shuffle buffer of a streamed training split holds: a quarter of the memory
    budget's worth, within :data:`SHUFFLE_BUFFER_IMAGES` and at most the split."""
    low, high = SHUFFLE_BUFFER_IMAGES
    fit = int(memory_budget()[0] * SHUFFLE_BUFFER_SHARE) // (3 * split.image_size**2)
    return max(1, min(len(split), high, max(low, fit)))


def index_batches(count: int, batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    """Batches of the indices ``0 .. count - 1``: in order, or in a new seeded order each
    epoch (shuffling indices, not pixels: one copy of the data in memory)."""
    indices = tf.data.Dataset.range(count)
    if shuffle:
        indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    return indices.batch(batch_size)


def check_split(loaded: LoadedSplit | StreamedSplit, batch_size: int, label_mode: str) -> None:
    """Raise ValueError, naming what was received, if :func:`make_dataset` cannot batch
    ``loaded`` this way."""
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode must be one of {', '.join(LABEL_MODES)}; got {label_mode!r}")
    if label_mode == "binary" and len(loaded.classes) != 2:
        raise ValueError(
            f"label_mode='binary' needs exactly 2 classes; got "
            f"{len(loaded.classes)} {loaded.classes}; use 'categorical'"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number ≥ 1; got {batch_size!r}")
    if len(loaded) == 0:
        raise ValueError(
            "no images to make a dataset from (0 readable files"
            + (f"; {len(loaded.skipped)} skipped" if loaded.skipped else "")
            + ")"
        )
    if isinstance(loaded, StreamedSplit):
        return
    shape = loaded.images.shape
    if loaded.images.dtype != np.uint8 or len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2]:
        raise ValueError(
            "LoadedSplit.images must be uint8 [N, S, S, 3] (as load_split makes them); "
            f"got {loaded.images.dtype} {shape}"
        )


def _batch_reader(loaded: LoadedSplit) -> Callable[[tf.Tensor], tf.Tensor]:
    """A function from a batch's indices to its pixels, uint8 ``[B, S, S, 3]``, read straight
    from the NumPy array (no copy of it in TensorFlow)."""
    pixels, size = loaded.images, loaded.image_size

    def gather(index: tf.Tensor) -> tf.Tensor:
        batch = tf.numpy_function(lambda rows: pixels[rows], [index], tf.uint8, stateful=False)
        batch.set_shape([None, size, size, 3])
        return batch

    return gather


def split_targets(loaded: LoadedSplit, label_mode: str) -> tf.Tensor:
    """Every image's label as the model's target: ``[N, 1]`` 0/1 (binary) or one-hot ``[N, K]``."""
    if label_mode == "binary":
        return tf.convert_to_tensor(loaded.labels.astype(np.float32)[:, None])
    return tf.one_hot(loaded.labels, len(loaded.classes), dtype=tf.float32)
