"""The cartoon animals: the picture's size and mode, and clear errors for bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from catdog.data.cartoon import draw_animal


def test_draw_animal_sizes_and_errors() -> None:
    rng = np.random.default_rng(0)
    assert draw_animal("cat", rng, 64).size == (64, 64)
    image = draw_animal("dog", rng, (150, 90))
    assert image.size == (150, 90)
    assert image.mode == "RGB"
    with pytest.raises(ValueError, match="'horse'"):
        draw_animal("horse", rng, 64)
    with pytest.raises(ValueError, match="3×3"):
        draw_animal("cat", rng, 3)
