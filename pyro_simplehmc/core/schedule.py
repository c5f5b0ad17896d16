r"""Stan's windowed warmup: which warmup iterations adapt what.

Warmup is cut into windows (Stan Reference Manual, "HMC algorithm parameters: automatic
parameter tuning"):

1. a fast initial buffer (75 iterations), in which only the step size adapts, while the chains
   find the typical set;
2. slow windows of 25, 50, 100, ... iterations (each twice the last; the last one stretched to
   reach the final buffer), which estimate the inverse mass matrix from their own draws; at the
   end of each, the estimate replaces the metric and the step-size adaptation starts again;
3. a fast final buffer, in which only the step size adapts, to the final metric.

When the three default sizes do not fit in the warmup, the buffers take 15% and 10% of it and the
slow window the rest; with fewer than 20 warmup iterations there is one window, for the step size
only.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["FINAL_BUFFER", "INITIAL_BUFFER", "INITIAL_WINDOW", "Window", "windows"]

#: Stan's fast initial buffer, first slow window and fast final buffer (iterations).
INITIAL_BUFFER, INITIAL_WINDOW, FINAL_BUFFER = 75, 25, 50


class Window(NamedTuple):
    """Warmup iterations ``start`` to ``end`` (both included)."""

    start: int
    end: int


def windows(
    warmup_steps: int,
    initial_buffer: int = INITIAL_BUFFER,
    initial_window: int = INITIAL_WINDOW,
    final_buffer: int = FINAL_BUFFER,
) -> list[Window]:
    """The windows of ``warmup_steps`` iterations: the initial buffer, the slow windows, the
    final buffer, in order (one window when ``warmup_steps < 20``, none when it is 0).

    :param int warmup_steps: the number of warmup iterations.
    :param int initial_buffer: the fast initial buffer's length.
    :param int initial_window: the first slow window's length.
    :param int final_buffer: the fast final buffer's length.
    """
    if warmup_steps <= 0:
        return []
    if warmup_steps < 20:
        return [Window(0, warmup_steps - 1)]
    if initial_buffer + initial_window + final_buffer > warmup_steps:
        initial_buffer = int(0.15 * warmup_steps)
        final_buffer = int(0.1 * warmup_steps)
        initial_window = warmup_steps - initial_buffer - final_buffer
    schedule = [Window(0, initial_buffer - 1)]
    final_start = warmup_steps - final_buffer
    start, size = initial_buffer, initial_window
    while start < final_start:
        # Each window is twice the last, unless the one after would not fit: then this one
        # stretches to the final buffer.
        if 3 * size <= final_start - start:
            next_size = 2 * size
        else:
            size = next_size = final_start - start
        schedule.append(Window(start, start + size - 1))
        start, size = start + size, next_size
    schedule.append(Window(final_start, warmup_steps - 1))
    return schedule
