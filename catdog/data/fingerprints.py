"""Near-duplicate images: perceptual fingerprints and the pairs they find.

Each image is reduced once to a 64×64 grey picture (squashed, as training squashes it). From
it come two cheap signatures used to find *candidates* among all pairs:

* a DCT perceptual hash (pHash: the signs of the 8×8 lowest frequencies of a 32×32 picture
  against their median, 63 bits), of the image and of its mirror image;
* an 8×8 grey thumbnail, mean-removed and normalised, of the image and of its mirror image.

A pair is a candidate when its hashes are within :data:`CANDIDATE_BITS` bits or its thumbnails
correlate above :data:`CANDIDATE_CORRELATION` (either way round, mirrored or not), or one is
among the other's :data:`CANDIDATE_NEIGHBOURS` nearest by either: loose on purpose, a few
candidates per image. Each candidate is then *verified*: the 12×12 thumbnail of
one image is correlated with 72 crops of the other (each side kept whole or cut to 95% or 90%
at its start, middle or end, mirrored or not), and the best correlation of either way round is
the pair's score. A copy that was resized, re-compressed, cropped by up to 10% or mirrored
scores ≥ 0.96 on the seed's photos, and distinct photos ≤ 0.94 (benchmarks/audit.py), hence
:data:`NEAR_DUPLICATE_SCORE`. Hashes alone cannot do it: a 10% crop moves a 64-bit pHash by up
to 16 bits, where thousands of distinct pairs of the seed's photos also lie.

Plain numpy and Pillow: no TensorFlow.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image

SIDE = 64  # every image is compared at 64×64 grey
HASH_SIDE = 32  # pHash: DCT of a 32×32 picture ...
HASH_FREQUENCIES = 8  # ... keeping its 8×8 lowest frequencies (the constant term dropped)
THUMB_SIDE = 8  # the candidate thumbnail
VERIFY_SIDE = 12  # the verifying thumbnail
# Candidates: loose enough that every planted copy of the benchmark is one (the worst were 16
# bits and 0.84), a few per image on the seed's photos.
CANDIDATE_BITS = 18
CANDIDATE_CORRELATION = 0.8
# ... and, whatever their distance, each image's nearest few by either signature: a busy picture
# cropped at an edge can fall outside both bounds (a generated one did: 22 bits, 0.74).
CANDIDATE_NEIGHBOURS = 5
# A verified score at or above this is a near-duplicate (see the module docstring).
NEAR_DUPLICATE_SCORE = 0.95
# Each side of a crop: (share kept, where it starts as a share of the side).
_CROPS = ((1.0, 0.0), (0.95, 0.0), (0.95, 0.05), (0.9, 0.0), (0.9, 0.05), (0.9, 0.1))
_BLOCK = 1024  # rows of the all-pairs comparison computed at once (memory: _BLOCK × images)
_GREY = np.array([0.299, 0.587, 0.114], np.float32)


def _dct_rows(n: int, keep: int) -> np.ndarray:
    """The first ``keep`` rows of the orthonormal DCT-II matrix of size ``n``."""
    k = np.arange(keep)[:, None]
    x = np.arange(n)[None, :]
    rows = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2 / n)
    rows[0] /= np.sqrt(2)
    return rows.astype(np.float32)


_DCT = _dct_rows(HASH_SIDE, HASH_FREQUENCIES)


def grey_square(image: Image.Image) -> np.ndarray:
    """An RGB image squashed to :data:`SIDE`×:data:`SIDE` grey levels (``uint8``)."""
    rgb = image.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR)
    return np.asarray(rgb, np.float32).dot(_GREY).round().astype(np.uint8)


def _shrink(grey: np.ndarray, side: int) -> np.ndarray:
    """Box-average a square grey picture to ``side``×``side`` (``SIDE`` a multiple of it)."""
    k = grey.shape[0] // side
    return grey.astype(np.float32).reshape(side, k, side, k).mean((1, 3))


def _unit(vector: np.ndarray) -> np.ndarray:
    """Mean removed, length 1 (a flat picture stays all zeros: it correlates with nothing)."""
    v = vector.ravel().astype(np.float32)
    v = v - v.mean()
    norm = np.linalg.norm(v)
    return v / norm if norm > 1e-3 else np.zeros_like(v)


def phash(grey: np.ndarray) -> np.ndarray:
    """The 63-bit DCT perceptual hash of a :data:`SIDE`-pixel grey picture, as ±1 floats."""
    freq = (_DCT @ _shrink(grey, HASH_SIDE) @ _DCT.T).ravel()[1:]
    return np.where(freq > np.median(freq), 1.0, -1.0).astype(np.float32)


def signature(grey: np.ndarray) -> dict[str, np.ndarray]:
    """What :func:`near_duplicates` needs of one image: its pHash and thumbnail, and theirs of
    its mirror image. ``grey`` comes from :func:`grey_square`."""
    mirror = grey[:, ::-1]
    return {
        "hash": phash(grey),
        "hash_mirror": phash(mirror),
        "thumb": _unit(_shrink(grey, THUMB_SIDE)),
        "thumb_mirror": _unit(_shrink(mirror, THUMB_SIDE)),
        "verify": _unit(_whole(grey)),
    }


def _box_matrix(start: float, keep: float, side: int = VERIFY_SIDE) -> np.ndarray:
    """The ``side×SIDE`` matrix that box-averages the span ``[start, start + keep)`` (shares of
    :data:`SIDE`) of a line of pixels down to ``side`` values (partial pixels weighted)."""
    edges = (start + keep * np.arange(side + 1) / side) * SIDE
    pixels = np.arange(SIDE)
    low, high = edges[:-1, None], edges[1:, None]
    overlap = np.clip(np.minimum(high, pixels + 1) - np.maximum(low, pixels), 0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


_SPANS = np.stack([_box_matrix(start, keep) for keep, start in _CROPS])  # (crops, side, SIDE)


def _units(rows: np.ndarray) -> np.ndarray:
    """:func:`_unit` of each row."""
    rows = rows - rows.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.where(norms > 1e-3, rows / np.maximum(norms, 1e-3), 0.0).astype(np.float32)


def _whole(grey: np.ndarray) -> np.ndarray:
    """The verifying thumbnail of the whole picture (the first of :func:`crops`)."""
    return _SPANS[0] @ grey.astype(np.float32) @ _SPANS[0].T


def crops(grey: np.ndarray) -> np.ndarray:
    """The 72 crops of a grey picture that verification tries, as unit vectors (rows): each
    side whole or cut to 95% or 90% at its start, middle or end, mirrored or not."""
    out = []
    for picture in (grey, grey[:, ::-1]):
        rows = _SPANS @ picture.astype(np.float32)  # (crops, side, SIDE): rows cut
        both = np.einsum("aik,bjk->abij", rows, _SPANS)  # then columns
        out.append(both.reshape(len(_CROPS) ** 2, -1))
    return _units(np.concatenate(out))


def _blocks(n: int) -> Iterator[slice]:
    for start in range(0, n, _BLOCK):
        yield slice(start, min(start + _BLOCK, n))


def candidate_pairs(signatures: list[dict[str, np.ndarray]]) -> set[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, whose hashes or thumbnails are close, or nearest.

    Computed in blocks of rows, so memory grows with the number of images, not its square.
    """
    hashes = np.stack([s["hash"] for s in signatures])
    mirrors = np.stack([s["hash_mirror"] for s in signatures])
    thumbs = np.stack([s["thumb"] for s in signatures])
    thumb_mirrors = np.stack([s["thumb_mirror"] for s in signatures])
    bits = hashes.shape[1]
    found: set[tuple[int, int]] = set()
    nearest = min(CANDIDATE_NEIGHBOURS, len(signatures) - 1)
    for rows in _blocks(len(signatures)):
        distance = (bits - np.maximum(hashes[rows] @ hashes.T, hashes[rows] @ mirrors.T)) / 2
        alike = np.maximum(thumbs[rows] @ thumbs.T, thumbs[rows] @ thumb_mirrors.T)
        close = (distance <= CANDIDATE_BITS) | (alike >= CANDIDATE_CORRELATION)
        own = np.arange(rows.stop - rows.start)
        distance[own, own + rows.start], alike[own, own + rows.start] = np.inf, -np.inf
        if nearest > 0:
            for ranked in (np.argpartition(distance, nearest - 1, axis=1),
                           np.argpartition(-alike, nearest - 1, axis=1)):  # fmt: skip
                close[own[:, None], ranked[:, :nearest]] = True
        for i, j in np.argwhere(close):
            i += rows.start
            if i != j:
                found.add((int(min(i, j)), int(max(i, j))))
    return found


def verify(
    greys: list[np.ndarray],
    signatures: list[dict[str, np.ndarray]],
    pairs: set[tuple[int, int]],
    tick: Callable[[int, int], None] | None = None,
) -> dict[tuple[int, int], float]:
    """Each candidate pair's score: the best correlation of either image's thumbnail with one
    of the other's :func:`crops`. ``tick(done, total)`` is called per image whose crops were
    tried."""
    partners: dict[int, list[int]] = defaultdict(list)
    for i, j in pairs:
        partners[i].append(j)
        partners[j].append(i)
    one_way: dict[tuple[int, int], float] = {}
    for done, (i, others) in enumerate(partners.items(), 1):
        fronts = np.stack([signatures[j]["verify"] for j in others])
        best = (crops(greys[i]) @ fronts.T).max(axis=0)
        one_way.update({(i, j): float(s) for j, s in zip(others, best, strict=True)})
        if tick is not None:
            tick(done, len(partners))
    return {(i, j): max(one_way[i, j], one_way[j, i]) for i, j in pairs}


def near_duplicates(
    greys: list[np.ndarray],
    signatures: list[dict[str, np.ndarray]],
    tick: Callable[[int, int], None] | None = None,
) -> list[tuple[int, int, float]]:
    """Pairs of images that are near-duplicates: ``(i, j, score)``, best score first.

    Args:
        greys: each image's :func:`grey_square`.
        signatures: each image's :func:`signature`, in the same order.
        tick: called as the verification goes (see :func:`verify`).
    """
    scores = verify(greys, signatures, candidate_pairs(signatures), tick)
    kept = [(i, j, s) for (i, j), s in scores.items() if s >= NEAR_DUPLICATE_SCORE]
    return sorted(kept, key=lambda pair: (-pair[2], pair[0], pair[1]))
