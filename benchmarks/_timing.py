"""Interleaved A/B timing: each round times a batch of calls of A, then of B, and so on.

A noisy machine slows both sides of a round alike, so the ratio of the medians stays
honest where two separate runs would not.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: One side of a comparison: ``run(batch)`` performs ``len(batch)`` operations.
Side = Callable[[Any], None]


def loop(fn: Callable[..., object]) -> Side:
    """A side that calls ``fn(*args)`` for each args tuple of the batch.

    Both sides of a comparison are built with this, so they pay the same loop overhead.
    """

    def run(batch: Sequence[Any]) -> None:
        for args in batch:
            fn(*args)

    return run


@dataclass
class Result:
    """Per-operation times in nanoseconds, one sample per round and side."""

    name: str
    floor_name: str
    samples: list[float] = field(default_factory=list)
    floor_samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def floor_median(self) -> float:
        return statistics.median(self.floor_samples)

    @property
    def ratio(self) -> float:
        return self.median / self.floor_median


def compare(
    name: str,
    side: Side,
    floor_name: str,
    floor: Side,
    batches: Callable[[int], tuple[Sequence[Any], Sequence[Any]]],
    *,
    rounds: int,
    warmup: int = 2,
) -> Result:
    """Time *side* against *floor*, A B A B, *rounds* times.

    ``batches(i)`` gives round *i*'s argument batches (A's, then B's); sides that consume
    state (an invitation can be accepted once) get fresh arguments every round. The order
    flips every round, so neither side always runs with a warm or a cold cache.
    """
    result = Result(name, floor_name)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection landing in one side's batch would skew a single sample
    try:
        for i in range(warmup + rounds):
            a_batch, b_batch = batches(i)
            order = ((side, a_batch, True), (floor, b_batch, False))
            if i % 2:
                order = order[::-1]
            for run, batch, is_a in order:
                t0 = time.perf_counter_ns()
                run(batch)
                elapsed = (time.perf_counter_ns() - t0) / len(batch)
                if i >= warmup:
                    (result.samples if is_a else result.floor_samples).append(elapsed)
            gc.collect()
    finally:
        if gc_was_enabled:
            gc.enable()
    return result


def fmt_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    return f"{ns:.0f} ns"
