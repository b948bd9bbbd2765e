"""A learning rate suggested by a learning-rate range test, read robustly from its losses.

A range test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017; fastai's
and Lightning's ``lr_find``) trains a fresh model while the learning rate grows
exponentially, one step per rate, and records the training loss at each step. The rate
worth suggesting is where the loss falls fastest. Reading that point off the raw curve goes
wrong in three known ways, which this module avoids:

- the slope must be taken against log(lr): the rates are spaced geometrically, and
  d loss / d lr = (d loss / d log lr) / lr favours the smallest rates by the factor 1/lr,
  while a slope per step equals the log-lr slope only on an exactly geometric grid;
- a fresh model's first steps spike, so a running median removes short runs of spikes
  and the first steps are not searched at all;
- single steps are noisy, and the top of a broad fall is flat, so noise moves its single
  steepest point far: the curve is averaged heavily, and the suggestion is the middle of
  the stretch that falls almost as fast as the steepest point.

While the test runs, ``RunningSmoother`` and ``diverged`` decide when to stop it; they may
only look back, so they use fastai's bias-corrected exponential moving average instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_STEPS = 8
MEDIAN_FRACTION, MEDIAN_LEAST = 0.10, 5
AVERAGE_FRACTION, AVERAGE_LEAST = 0.10, 5
HEAD_FRACTION = 0.10
STEEP_SHARE = 0.8
MIN_RELATIVE_FALL = 0.05
# A fall counts when it exceeds this many times the noise of the smoothed curve, sigma /
# sqrt(width). On flat noisy curves (Gaussian, heavy-tailed and spiky noise, 1,500 each)
# it suggested nothing at 100 and 300 steps, and at 30 steps wrongly 2 to 9 times in 1,500.
MIN_FALL_IN_NOISE = 6.5
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Suggestion:
    lr: float | None  # None when the loss never fell
    index: int | None  # the suggested step's position in the input
    reason: str  # one sentence for the learner, with its numbers
    smoothed: list[float]  # as long as the input, NaN past a divergence: the plot, the CSV


def smooth(losses: Sequence[float]) -> list[float]:
    """The loss curve without its spikes and its step-to-step noise, for a finished test.

    Non-causal, as the whole curve is known once the test ends: a running median (odd
    width, about 10% of the steps, at least 5) removes any run of spikes shorter than half
    its width and leaves a monotone stretch exactly as it is; then a centred moving average
    applied twice (same width; twice makes a triangular kernel) removes the noise. Windows
    count steps, because the noise comes per step. The losses must be finite: ``suggest``
    drops a diverged tail first.
    """
    values = np.asarray(losses, dtype=float)
    if not np.all(np.isfinite(values)):
        raise ValueError("smooth() needs finite losses; drop the diverged tail first")
    despiked = _running_median(values, _odd_width(len(values), MEDIAN_FRACTION, MEDIAN_LEAST))
    width = _odd_width(len(values), AVERAGE_FRACTION, AVERAGE_LEAST)
    return _centred_mean(_centred_mean(despiked, width), width).tolist()


def suggest(lrs: Sequence[float], losses: Sequence[float]) -> Suggestion:
    r"""The learning rate where the smoothed loss falls fastest against log(lr), or None.

    Only the steps before the first non-finite loss are read (the test diverged there).
    With :math:`\ell_i` those losses at rates :math:`\eta_i`, :math:`x_i = \ln \eta_i`,
    :math:`s` = ``smooth``\ (:math:`\ell`), :math:`n` steps and :math:`h = 0.1\, n` the
    first steps left unread (early spikes live there):

    .. math::
        \begin{aligned}
            s'_i &= \frac{ds}{dx}(x_i) \quad \text{(np.gradient(s, x): central differences)} \\
            m &= \operatorname{argmin}_i s_i, \qquad
            i^* = \operatorname{argmin}_{h \le i \le m} s'_i \\
            [a, b] &= \text{the run of steps around } i^* \text{ with } s'_i \le 0.8\, s'_{i^*}
        \end{aligned}

    and the suggestion is the step nearest :math:`(x_a + x_b) / 2`: the top of a broad fall
    is flat, and the middle of that run moves far less with noise than :math:`i^*` itself.

    No suggestion (lr None) when the loss never fell, :math:`\bar s - s_m \le \delta`
    with :math:`\bar s` the median of :math:`s` over the first half of the steps before
    :math:`m` (a level less noisy than :math:`s_0` alone), or fell only before step
    :math:`h`, :math:`s_h - s_m \le \delta`, where
    :math:`\delta = \max(0.05\, |s_0|,\ 6.5 \sigma / \sqrt{w})`, :math:`w` the averaging
    width and :math:`\sigma = 1.4826\, \mathrm{MAD}(\ell - s)` over steps 0 to :math:`m` (at
    least 8) the step-to-step noise: averaging :math:`w` steps divides it by
    :math:`\sqrt{w}`, so a longer test tells a smaller fall from noise. The 5% floor keeps a
    nearly noiseless loss that barely moves from counting as a fall.
    """
    log_lrs = _validated_log_lrs(lrs, len(losses))
    finite = _finite_prefix(losses)
    if len(finite) < MIN_STEPS:
        reason = f"too few steps to read: {len(finite)} finite losses, at least {MIN_STEPS} needed"
        return Suggestion(None, None, reason, _padded(smooth(finite), len(losses)))
    smoothed = np.asarray(smooth(finite))
    padded = _padded(smoothed.tolist(), len(losses))
    lowest = int(np.argmin(smoothed))
    start = float(np.median(smoothed[: max(1, lowest // 2)]))
    needed = _fall_needed(finite, smoothed, lowest)
    if start - smoothed[lowest] <= needed:
        return Suggestion(None, None, _never_fell(start, smoothed[lowest], needed), padded)
    head = round(HEAD_FRACTION * len(finite))
    if lowest <= head or smoothed[head] - smoothed[lowest] <= needed:
        if smoothed[0] - smoothed[min(head, lowest)] > needed:
            return Suggestion(None, None, _fell_only_in_head(lrs, head), padded)
        after = float(smoothed[head]) if lowest > head else start
        return Suggestion(None, None, _never_fell(after, smoothed[lowest], needed), padded)
    slopes = np.gradient(smoothed, log_lrs[: len(finite)])
    index = _middle_of_steepest_stretch(slopes, log_lrs, head, lowest)
    decades = (log_lrs[lowest] - log_lrs[index]) / math.log(10)
    reason = (
        f"steepest fall of the smoothed loss at {lrs[index]:.1e}, "
        f"{decades:.1f} decades below its minimum at {lrs[lowest]:.1e}"
    )
    return Suggestion(float(lrs[index]), index, reason, padded)


def diverged(best_smoothed: float, smoothed: float, threshold: float) -> bool:
    """Whether a running test should stop: the smoothed loss passed threshold x its best.

    A non-finite loss always counts. A ratio to a best of zero or below (an exact fit, or
    a loss that can be negative) means nothing, so then only a non-finite loss counts.
    """
    if threshold <= 1:
        raise ValueError(f"threshold must exceed 1 (the best itself), got {threshold}")
    if not math.isfinite(smoothed):
        return True
    return best_smoothed > 0 and smoothed > threshold * best_smoothed


class RunningSmoother:
    r"""The loss smoothed while the test runs, when only past steps are known.

    fastai's exponential moving average with bias correction: after step :math:`t`,
    :math:`a_t = \beta a_{t-1} + (1 - \beta) \ell_t` with :math:`a_0 = 0`, and the smoothed
    loss is :math:`a_t / (1 - \beta^t)`; without the correction the first values would be
    pulled towards 0 and look like a great fall. ``best`` is the lowest smoothed loss so
    far, to compare against with ``diverged``.
    """

    def __init__(self, beta: float = 0.98) -> None:
        if not 0 <= beta < 1:
            raise ValueError(f"beta must be in [0, 1), got {beta}")
        self.beta = beta
        self.steps = 0
        self.best = math.inf
        self._average = 0.0

    def add(self, loss: float) -> float:
        self.steps += 1
        self._average = self.beta * self._average + (1 - self.beta) * loss
        smoothed = self._average / (1 - self.beta**self.steps)
        if smoothed < self.best:
            self.best = smoothed
        return smoothed


def _odd_width(points: int, fraction: float, least: int) -> int:
    """An odd window of about `fraction` of the points, at least `least`, at most the curve."""
    width = max(least, round(fraction * points))
    width += 1 - width % 2
    largest = points if points % 2 else points - 1
    return max(1, min(width, largest))


def _running_median(values: np.ndarray, width: int) -> np.ndarray:
    """Median of a window centred where it can be and kept whole at the ends.

    A window cut short at the ends would let a few spikes on the first steps be its median.
    """
    if len(values) == 0:
        return values
    medians = np.median(np.lib.stride_tricks.sliding_window_view(values, width), axis=1)
    starts = np.clip(np.arange(len(values)) - width // 2, 0, len(values) - width)
    return medians[starts]


def _centred_mean(values: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over the points that exist (fewer at the ends)."""
    if len(values) == 0:
        return values
    kernel = np.ones(width)
    counts = np.convolve(np.ones(len(values)), kernel, mode="same")
    return np.convolve(values, kernel, mode="same") / counts


def _validated_log_lrs(lrs: Sequence[float], steps: int) -> np.ndarray:
    """ln(lr), after checking the rates can be read as one increasing range."""
    rates = np.asarray(lrs, dtype=float)
    if rates.shape != (steps,):
        raise ValueError(f"{len(rates)} learning rates for {steps} losses")
    if not (np.all(np.isfinite(rates)) and np.all(rates > 0) and np.all(np.diff(rates) > 0)):
        raise ValueError("learning rates must be finite, positive and strictly increasing")
    return np.log(rates)


def _finite_prefix(losses: Sequence[float]) -> np.ndarray:
    """The losses before the first non-finite one: after it the test had diverged."""
    values = np.asarray(losses, dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    return values[: bad[0]] if len(bad) else values


def _padded(smoothed: list[float], length: int) -> list[float]:
    """The smoothed curve at the input's length: NaN where the losses were not read."""
    return smoothed + [math.nan] * (length - len(smoothed))


def _fall_needed(losses: np.ndarray, smoothed: np.ndarray, lowest: int) -> float:
    """The smallest fall that neither a barely moving loss nor step-to-step noise explains.

    The noise is read up to the minimum (at least MIN_STEPS steps): past it a loss that
    blows up by orders of magnitude leaves residuals that say nothing about noise.
    """
    read = max(lowest + 1, MIN_STEPS)
    residuals = losses[:read] - smoothed[:read]
    noise = MAD_TO_SIGMA * float(np.median(np.abs(residuals - np.median(residuals))))
    width = _odd_width(len(losses), AVERAGE_FRACTION, AVERAGE_LEAST)
    smoothed_noise = noise / math.sqrt(width)
    return max(MIN_RELATIVE_FALL * abs(float(smoothed[0])), MIN_FALL_IN_NOISE * smoothed_noise)


def _middle_of_steepest_stretch(
    slopes: np.ndarray, log_lrs: np.ndarray, first: int, last: int
) -> int:
    """The step nearest the middle, in log lr, of the steep stretch around the steepest slope.

    One step alone would move with every wiggle of noise on the flat top of a broad fall.
    """
    steepest = first + int(np.argmin(slopes[first : last + 1]))
    steep = slopes <= STEEP_SHARE * slopes[steepest]
    start, end = steepest, steepest
    while start > first and steep[start - 1]:
        start -= 1
    while end < last and steep[end + 1]:
        end += 1
    middle = (log_lrs[start] + log_lrs[end]) / 2
    return start + int(np.argmin(np.abs(log_lrs[start : end + 1] - middle)))


def _never_fell(start: float, lowest: float, needed: float) -> str:
    return (
        f"the loss never fell clearly: its smoothed value went from {start:.3g} to no lower "
        f"than {lowest:.3g}, and a fall must exceed {needed:.2g} to stand out of the noise; "
        "more steps (lr_find.steps) or a larger batch average more of the noise away"
    )


def _fell_only_in_head(lrs: Sequence[float], head: int) -> str:
    return (
        f"the loss fell only in the first {head} steps, up to {lrs[head]:.1e}, which early "
        "spikes make unreliable; start the range at a lower learning rate"
    )
