"""Paired bootstrap confidence intervals for comparing two models on the same users.

Both models are scored on the same users, so their per-user metric values are
paired: resampling *users* (with replacement) and recomputing the mean of the
per-user differences keeps the pairing, and its spread is far smaller than
two independent intervals would suggest when the models agree on most users.
Intervals are percentile intervals of the resampled means.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import BaseModel


class Interval(BaseModel):
    """A mean with its percentile bootstrap interval."""

    mean: float
    low: float
    high: float


class PairedDifference(BaseModel):
    """``b - a`` over paired users.

    Attributes:
        a, b: each model's mean with its own bootstrap interval (same resamples).
        diff: the mean per-user difference ``b - a`` with its interval.
        relative: ``diff / a`` (None when ``a`` is 0).
        n: users.
    """

    a: Interval
    b: Interval
    diff: Interval
    relative: float | None
    n: int

    @property
    def significant(self) -> bool:
        """The interval of the difference excludes 0."""
        return self.diff.low > 0 or self.diff.high < 0


def bootstrap_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """``[resamples, n]`` user indices drawn with replacement (seeded).

    Exposed so a test can recompute an interval by hand from the same draws.
    """
    if n < 1:
        raise ValueError("cannot bootstrap an empty sample")
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _interval(values: np.ndarray, draws: np.ndarray, level: float) -> Interval:
    means = values[draws].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(mean=float(values.mean()), low=float(low), high=float(high))


def bootstrap_mean(values: np.ndarray, *, resamples: int = 1000, seed: int = 0,
                   level: float = 0.95) -> Interval:
    """The mean of ``values`` with its percentile bootstrap interval.

    With the same ``seed`` and length, the resamples are those of
    :func:`paired_bootstrap`, so a model's interval here equals its ``a`` there.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {values.shape}")
    _check_level(level)
    return _interval(values, bootstrap_indices(len(values), resamples, seed), level)


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def paired_bootstrap(a: np.ndarray, b: np.ndarray, *, resamples: int = 1000, seed: int = 0,
                     level: float = 0.95) -> PairedDifference:
    """Means of ``a`` and ``b`` and of their paired difference, with bootstrap intervals.

    Args:
        a: ``[n]`` per-user values of the reference model.
        b: ``[n]`` per-user values of the compared model, same users in the same order.
        resamples: bootstrap resamples.
        seed: seeds the resampling; the same seed gives the same intervals.
        level: interval coverage (0.95: the 2.5% and 97.5% quantiles, numpy's
            default linear interpolation).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired values must be two 1-D arrays of one length, got "
                         f"{a.shape} and {b.shape}")
    _check_level(level)
    draws = bootstrap_indices(len(a), resamples, seed)
    mean_a = float(a.mean())
    return PairedDifference(a=_interval(a, draws, level), b=_interval(b, draws, level),
                            diff=_interval(b - a, draws, level),
                            relative=(float((b - a).mean()) / mean_a) if mean_a else None,
                            n=len(a))


def paired_table(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], *,
                 resamples: int = 1000, seed: int = 0) -> dict[str, PairedDifference]:
    """:func:`paired_bootstrap` of every metric in ``a`` (``b`` must have the same keys).

    Every metric uses the same resamples, so the intervals of one table agree
    on which users were drawn.
    """
    if set(a) != set(b):
        raise ValueError(f"metric names differ: {sorted(set(a) ^ set(b))}")
    return {name: paired_bootstrap(a[name], b[name], resamples=resamples, seed=seed)
            for name in a}
