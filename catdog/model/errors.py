"""The error catdog's model modules raise for a model or a model setting that cannot work."""

from __future__ import annotations


class ModelError(ValueError):
    """An unknown model name or an impossible model setting."""
