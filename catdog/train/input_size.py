"""The input size a time-limited preset trains at, from the speed measured on this machine.

A time limit buys fewer epochs on a slower CPU, and below some number of epochs a smaller input
with the epochs it buys beats the preset's own size. Measured for catdog-net on the seed's
photos (``benchmarks/decisions/2026-11-30-96px-on-slow-cpus.md``): where 60 epochs of 112 px
fit 28 minutes (an AVX2-only CPU), 83 epochs of 96 px reach 88.8% mean validation accuracy over
their last 20 epochs against 85.2%; where 145 epochs of 112 px fit (AMX), 96 px lost 0.8 points
(``2026-11-29-96px-more-epochs.md``). So a preset names a smaller size and the most epochs of
its own size at which it takes it (:attr:`~catdog.train.presets.Preset.slow_image_size`,
``slow_epochs``). Plain Python: no TensorFlow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from catdog.train.precision import epochs_in_budget
from catdog.train.presets import get_preset


@dataclass(frozen=True)
class SizeChoice:
    """The input size a run trains at, and why (for its config and its start message)."""

    image_size: int
    reason: str
    epochs_at_preset_size: int
    epochs_at_chosen_size: int

    def to_dict(self) -> dict:
        return asdict(self)


def choose_image_size(
    model: str,
    image_size: int,
    epochs: int,
    minutes: float,
    images_per_second: float,
    train_images: int,
    val_images: int,
) -> SizeChoice | None:
    """The smaller input of ``model``'s preset, if the time limit buys it few epochs here.

    Args:
        model: the preset's name.
        image_size: the size the run would train at (the preset's own).
        epochs: the most epochs the run trains.
        minutes: its time limit (0: none, and nothing to choose).
        images_per_second: the training speed measured on this machine at ``image_size``.
        train_images, val_images: the images an epoch trains on and validates.

    Returns:
        The choice of the smaller size with the reason; None where the preset has none, all
        ``epochs`` fit the limit, or more than its ``slow_epochs`` do (the run keeps
        ``image_size``).
    """
    spec = get_preset(model)
    small = spec.slow_image_size
    if not small or not minutes or not images_per_second or image_size != spec.image_size:
        return None
    fit = epochs_in_budget(minutes, images_per_second, train_images, val_images, epochs)
    if fit >= epochs or fit > spec.slow_epochs:  # the limit does not bind, or buys enough
        return None
    # A convolution's work follows the pixels: measured 1.38× faster at 96 px than at 112 px
    # (1.36× fewer pixels) on an AVX2-only CPU.
    faster = images_per_second * (image_size / small) ** 2
    more = epochs_in_budget(minutes, faster, train_images, val_images, epochs)
    reason = (
        f"{small} px: about {fit} epochs of {image_size} px fit the {minutes:g}-minute limit at "
        f"{images_per_second:.0f} images/s, {spec.slow_epochs} or fewer, where {small} px "
        f"with the epochs it buys (about {more}) was measured more accurate"
    )
    return SizeChoice(small, reason, fit, more)
