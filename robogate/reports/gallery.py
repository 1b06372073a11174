"""The reports' failure gallery: a strip of frames around the failure step of one replayed episode per group.

The sweep and suite reports group their failed episodes by outcome, the comparison report its
flipped episodes by change and outcome (:class:`Shot` names the group). :func:`add_gallery`
replays, per group, stored episodes in the order given until one ends as stored (at most
:data:`TRIES`), then runs that episode once more rendering only the few frames of its strip
(:func:`strip_frames`): the cost is two short episodes and a handful of frames per group. An
env that cannot render, or a policy that cannot be rebuilt, leaves the gallery out, and the
report says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from robogate.reports.animation import Replay, Replayer
from robogate.reports.document import Document
from robogate.scenarios.envelope import Envelope
from robogate.scenarios.space import Continuous, ParameterSpace

__all__ = ["STRIP", "TRIES", "Shot", "add_gallery", "describe_scene", "strip_frames"]

STRIP = 5
"""Most frames in one episode's strip."""
TRIES = 3
"""Most episodes a group replays before it gives up on reproducing one."""
_RED = "#d62728"
_MARGIN = 4
"""Pixels of background left around a strip's picture."""


@dataclass(frozen=True)
class Shot:
    """A stored episode the gallery may show.

    Attributes
    ----------
    group : str
        What it stands for, e.g. ``"collision"`` or ``"lost: collision"``: the gallery shows one episode per group.
    name : str
        Which episode, e.g. ``"experiment 37"``.
    env_id, policy : str
        The env id and the policy spec it ran with.
    params : dict
        Its scene.
    seed : int
    outcome : str
        How it ended when it was stored.
    scene : str
        The scene in words, for the gallery's table.
    watch : str
        Optional: how to watch the whole episode (a command line).
    """

    group: str
    name: str
    env_id: str
    policy: str
    params: Mapping[str, Any]
    seed: int
    outcome: str
    scene: str
    watch: str = ""


def describe_scene(space: ParameterSpace, params: Mapping[str, Any]) -> str:
    """A scene's values that differ from nominal, e.g. ``"friction 0.312, shape sphere"``; ``"nominal"`` for none."""
    nominal = space.nominal()
    limits = {n: (v, v) if isinstance(space[n], Continuous) else [v] for n, v in params.items()
              if n in space and v != nominal[n]}
    one_point = Envelope(space, limits)
    return ", ".join(one_point.describe_entry(n) for n in one_point.limits) or "nominal"


def strip_frames(failure_step: int, steps: int) -> list[int]:
    """The frames of a strip: the start, two before the failure, the failure frame and one after (when there is one),
    a seventh of the way to the failure apart.

    Frame ``t`` is the scene after ``t`` control steps; the failure step ``k`` shows in frame ``k + 1``.
    """
    fail = failure_step + 1
    gap = max(1, round(fail / 7))  # 2-3 control steps before an early failure, more before a late one
    return sorted({0, max(0, fail - 2 * gap), max(0, fail - gap), fail, min(steps, fail + gap)})[-STRIP:]


def _film(shots: Sequence[Shot], tries: int) -> tuple[list[tuple[Shot, Replay]], list[str]]:
    """One reproduced episode per group with its strip's frames, and a note per group that reproduced none."""
    groups: dict[str, list[Shot]] = {}
    for shot in shots:
        groups.setdefault(shot.group, []).append(shot)
    replayers: dict[tuple[str, str], Replayer] = {}
    shown, notes = [], []
    try:
        for group, candidates in groups.items():
            missed = []
            for shot in candidates[:tries]:
                key = (shot.env_id, shot.policy)
                if key not in replayers:
                    replayers[key] = Replayer(*key)
                replayer = replayers[key]
                first = replayer.run(dict(shot.params), shot.seed, stored_outcome=shot.outcome)
                if first.reproduced:
                    # A failure without an event (a timeout) is filmed up to its last step.
                    until = first.steps - 1 if first.failure_step is None else first.failure_step
                    filmed = replayer.run(dict(shot.params), shot.seed, strip_frames(until, first.steps),
                                          stored_outcome=shot.outcome)
                    if filmed.reproduced:
                        shown.append((shot, filmed))
                        break
                missed.append(f"{shot.name} replayed as {first.outcome}")
            else:
                notes.append(f"{group}: none of the {len(missed)} episode{'s' * (len(missed) != 1)} tried ended as "
                             f"stored ({'; '.join(missed)}): the env, the policy or a library has changed since they "
                             "ran, or the episodes are not deterministic, so the gallery shows none of them.")
    finally:
        for replayer in replayers.values():
            replayer.close()
    return shown, notes


def _crop(frames: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """The frames cut to what is not plain background (the colour of each frame's corner), the same cut for all.

    Cutting to where the frames change would lose what the failure is about when it does not
    move (an object the gripper never reached).
    """
    stack = np.stack(list(frames.values())).astype(np.int16)
    busy = (np.abs(stack - stack[:, :1, :1, :]) > 8).any(axis=(0, 3))
    rows, cols = np.flatnonzero(busy.any(axis=1)), np.flatnonzero(busy.any(axis=0))
    if not len(rows):
        return frames
    top, left = max(rows[0] - _MARGIN, 0), max(cols[0] - _MARGIN, 0)
    return {t: frame[top:rows[-1] + _MARGIN + 1, left:cols[-1] + _MARGIN + 1] for t, frame in frames.items()}


def _figure(shown: list[tuple[Shot, Replay]]) -> Figure:
    """One row per group: its episode's frames, the failure frame (else the last) outlined in red."""
    fig = Figure(figsize=(11, 2.25 * len(shown)), layout="constrained")
    rows = fig.subfigures(len(shown), 1, squeeze=False)[:, 0]
    for sub, (shot, replay) in zip(rows, shown):
        sub.suptitle(f"{shot.group}: {shot.name}", x=0.005, ha="left", fontsize=10, weight="bold")
        frames = _crop(replay.frames)
        for ax, t in zip_longest(sub.subplots(1, STRIP), sorted(frames)):
            ax.set_xticks([])
            ax.set_yticks([])
            if t is None:
                ax.set_axis_off()
                continue
            ax.imshow(frames[t])
            failure = t == (replay.failure_frame if replay.failure_frame is not None else max(frames))
            label = "start" if t == 0 else f"step {t - 1}"
            ax.set_title(f"{label}: {replay.outcome}" if failure else label, fontsize=9,
                         color=_RED if failure else "black", weight="bold" if failure else "normal")
            for spine in ax.spines.values():
                spine.set_color(_RED if failure else "#999999")
                spine.set_linewidth(3.5 if failure else 0.6)
    return fig


def add_gallery(doc: Document, shots: Sequence[Shot], intro: str, *, heading: str = "Failure gallery",
                tries: int = TRIES) -> None:
    """Add the gallery section to ``doc``: a figure of strips, a table of the episodes shown, and what it could not show.

    Parameters
    ----------
    doc : Document
    shots : sequence of Shot
        Candidates in order of preference; the gallery shows at most one per group.
    intro : str
        What the groups are (a sentence before the figure).
    heading : str
    tries : int
        Most episodes replayed per group.
    """
    doc.heading(heading)
    if not shots:
        doc.text("No failed episode to show.")
        return
    try:
        shown, notes = _film(shots, tries)
    except (ValueError, ImportError, gym.error.Error) as exc:
        doc.caveat(f"No gallery: {' '.join(str(exc).split())}")
        return
    doc.text(f"{intro} Each episode is run again from its stored scene and seed, and shown only if it ends as "
             "stored; then it runs once more rendering only the frames of its strip.")
    if shown:
        doc.figure("gallery", _figure(shown), "Frames of one replayed episode per group (frame labels are control "
                                              "steps); the failure step, or the last step of an episode that ran out of time, is "
                                              "outlined in red.")
        table = pd.DataFrame([{"group": shot.group, "episode": shot.name, "scene": shot.scene, "seed": shot.seed,
                               "failure step": replay.failure_step, "steps": replay.steps,
                               **({"watch it": shot.watch} if shot.watch else {})} for shot, replay in shown])
        doc.table(table.fillna(""))
    for note in notes:
        doc.caveat(note)
