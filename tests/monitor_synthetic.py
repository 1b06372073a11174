"""Synthetic rollouts for the monitor's tests: exchangeable successes and drifting failures.

A success follows a shared nominal path in embedding space with episode-to-episode AR(1)
noise, its observation is a fixed mix of the embedding plus noise of its own, and its policy
samples action chunks tightly around a nominal action. A shifted rollout behaves the same
until an onset step; from there its embedding and its observation drift away at a steady rate,
its sampled chunks spread out and its successive plans stop agreeing, and the
failure event comes a fixed number of steps after the onset.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from robogate.monitor import Rollout

DIM, OBS, CHUNKS, HORIZON, ACTIONS = 12, 9, 16, 6, 5
FAILURE_DELAY = 12
"""Steps from the onset of the drift to the failure event."""


def _noise(rng: np.random.Generator, steps: int, size: int, rho: float = 0.8) -> np.ndarray:
    """Stationary AR(1) noise of unit variance, shape (steps, size)."""
    white = rng.normal(size=(steps, size))
    start = white[:1]  # x_0 ~ N(0, 1): stationary from the first step
    rest = lfilter([np.sqrt(1 - rho**2)], [1.0, -rho], white[1:], axis=0, zi=rho * start)[0]
    return np.concatenate([start, rest])


def _nominal(steps: int) -> np.ndarray:
    t = np.arange(steps)[:, None] / 10.0
    return np.sin(t + np.arange(DIM)[None, :])


_MIX = np.random.default_rng(12345).normal(size=(DIM, OBS)) / np.sqrt(DIM)


def rollout(rng: np.random.Generator, shifted: bool = False, chunks: bool = True) -> Rollout:
    """One synthetic rollout: a success, or (``shifted``) a failure after a drift."""
    steps = int(rng.integers(30, 61))
    embeddings = _nominal(steps) + 0.3 * _noise(rng, steps, DIM)
    observations = embeddings @ _MIX + 0.1 * _noise(rng, steps, OBS)
    spread = np.full(steps, 0.05)
    wander = np.zeros(steps)  # how far each step's plan jumps from the last one's
    failure_step = None
    if shifted:
        onset = int(rng.integers(steps // 5, steps // 2))
        drift = np.maximum(np.arange(steps) - onset, 0)
        direction = rng.normal(size=DIM)
        embeddings = embeddings + 0.25 * drift[:, None] * direction / np.linalg.norm(direction)
        seen = rng.normal(size=OBS)  # the scene drifts in the observation too, in a direction of its own
        observations = observations + 0.25 * drift[:, None] * seen / np.linalg.norm(seen)
        spread = spread * (1.0 + 0.4 * drift)
        wander = 0.05 * drift
        failure_step = min(onset + FAILURE_DELAY, steps - 1)
    action_chunks = None
    if chunks:
        nominal = np.tanh(_nominal(steps)[:, :ACTIONS])[:, None, None, :]
        jumps = wander[:, None, None, None] * rng.normal(size=(steps, 1, 1, ACTIONS))
        action_chunks = nominal + jumps + spread[:, None, None, None] * rng.normal(
            size=(steps, CHUNKS, HORIZON, ACTIONS))
    actions = np.tanh(_nominal(steps)[:, :ACTIONS])  # the plan it executes (no draw: the streams above stay)
    return Rollout(embeddings=embeddings, action_chunks=action_chunks, success=not shifted,
                   outcome="grip_loss" if shifted else "success", failure_step=failure_step,
                   observations=observations, actions=actions)


def rollouts(seed: int, n: int, shifted: bool = False, chunks: bool = True) -> list[Rollout]:
    rng = np.random.default_rng(seed)
    return [rollout(rng, shifted, chunks) for _ in range(n)]


def score_streams(rng: np.random.Generator, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two correlated non-negative per-step score streams for each of n exchangeable episodes."""
    first, second = [], []
    for _ in range(n):
        steps = int(rng.integers(30, 61))
        shape = 1.0 + 0.5 * np.sin(np.arange(steps) / 8.0)  # scores rise and fall over an episode
        common = _noise(rng, steps, 1)[:, 0]
        first.append(shape * np.abs(common + 0.5 * rng.normal(size=steps)))
        second.append(shape * np.abs(0.6 * common + 0.8 * _noise(rng, steps, 1)[:, 0]) + 0.2)
    return first, second


def labelled(seed: int, n: int, planted: bool = True, chunks: bool = True) -> list[Rollout]:
    """n rollouts, half of them failures. With ``planted``, a failure's observation carries a precursor
    (its first component ramps up from PRECURSOR steps before the failure event); without, failures
    and successes are drawn alike and only their labels differ."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        base = rollout(rng, chunks=chunks)
        if i % 2 == 0:
            out.append(base)
            continue
        steps = base.steps
        event = int(rng.integers(steps // 2, steps - 1))
        observations = base.observations.copy()
        if planted:
            ramp = np.clip(np.arange(steps) - (event - PRECURSOR), 0, None)
            observations[:, 0] += 0.6 * ramp
        out.append(Rollout(embeddings=base.embeddings, action_chunks=base.action_chunks, success=False,
                           outcome="collision", failure_step=event, observations=observations, actions=base.actions))
    return out


PRECURSOR = 6
"""Steps before the failure event at which a planted precursor starts."""
