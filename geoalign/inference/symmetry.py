"""A predictor's field averaged over rotations and flips of its input (test-time augmentation).

Why: the chain is trained on tiles turned by random multiples of 90° and flipped
(:mod:`geoalign.train.augment`), so on a turned tile it predicts the turned field, plus an error
of its own that changes with the turn. Turning the tile, predicting, turning the field back and
averaging keeps the field and averages those errors. It pays where the network is noisy: for a
network with fewer pretraining steps, and for the chain alone, whose coarse scales scatter most
(docs/model.md, ``python -m benchmarks.accuracy --methods local+learned local+learned+sym2``).

The transforms are numpy twins of :func:`geoalign.train.augment.rot90_batch` and
:func:`~geoalign.train.augment.hflip_batch` (the same convention, checked against them in
``tests/align/test_symmetry.py``), so this module does not load torch.
"""

from __future__ import annotations

import numpy as np

from geoalign.inference.protocol import FieldPredictor

# (quarter turns, then a horizontal flip): the first n of the dihedral group's elements, chosen so
# that 2 is a flip and 4 the four rotations.
SYMMETRIES: dict[int, tuple[tuple[int, bool], ...]] = {
    1: ((0, False),),
    2: ((0, False), (0, True)),
    4: ((0, False), (1, False), (2, False), (3, False)),
    8: tuple((k, flip) for k in range(4) for flip in (False, True)),
}


def turn(x: np.ndarray, k: int, flip: bool, *, is_field: bool = False) -> np.ndarray:
    """(…, H, W): turn by ``k`` quarter turns (``np.rot90`` on the last two axes), then mirror left
    to right if ``flip``; a field's vectors (dx east, dy south) turn with it."""
    out = np.rot90(x, k % 4, axes=(-2, -1))
    if is_field:
        for _ in range(k % 4):
            out = np.stack([out[1], -out[0]])
    if flip:
        out = out[..., ::-1]
        if is_field:
            out = np.stack([-out[0], out[1]])
    return np.ascontiguousarray(out)


def unturn_field(field: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """The inverse of :func:`turn` for a field: undo the flip, then the turns."""
    if flip:
        field = turn(field, 0, True, is_field=True)
    return turn(field, -k, False, is_field=True)


class SymmetryAveragedPredictor:
    """A FieldPredictor: ``inner``'s field averaged over ``n`` (1, 2, 4 or 8) rotations / flips of
    its input (module docstring); ``n`` times ``inner``'s cost."""

    def __init__(self, inner: FieldPredictor, n: int) -> None:
        if n not in SYMMETRIES:
            raise ValueError(f"symmetries must be one of {sorted(SYMMETRIES)}, got {n}")
        self.inner = inner
        self.symmetries = SYMMETRIES[n]
        self.name = inner.name
        self.gsd_m = inner.gsd_m
        self.context_px = inner.context_px
        self.channels = tuple(inner.channels)

    def predict(self, image: np.ndarray, valid: np.ndarray, map_: np.ndarray) -> np.ndarray:
        total = np.zeros((2, *image.shape[1:]), np.float64)
        for k, flip in self.symmetries:
            field = self.inner.predict(turn(image, k, flip), turn(valid, k, flip), turn(map_, k, flip))
            total += unturn_field(field, k, flip)
        return (total / len(self.symmetries)).astype(np.float32)
