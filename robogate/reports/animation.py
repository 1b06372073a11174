"""Replay stored experiments: re-run them from their parameters and seeds, check the outcome, film them.

One (parameters, seed) pair of a sweep is exactly reproducible, so a stored row can be run
again and watched. :class:`Replayer` makes the env once with ``render_mode="rgb_array"`` (any
Gymnasium env that renders, robogate's headless PyBullet scenes included) and the policy
once, runs an episode, and keeps the frames asked for; each :class:`Replay` says whether the
stored outcome came out again. :func:`write_animation` turns a replay's frames into an
animated GIF (matplotlib's ``PillowWriter``) or MP4 (``FFMpegWriter``) with the outcome in the
caption, a timeline marking the failure step, and a red border from the failure frame on,
held for a second. :func:`replay` does all of it for rows of a stored sweep
(``robogate replay``).

Frame ``t`` is the scene after ``t`` control steps (frame 0: at reset), so frame ``t`` shows the
result of control step ``t - 1`` (0-based, as the env's ``info["failure_step"]`` counts), and the
failure step ``k`` shows in frame ``k + 1``.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from robogate.execution.episode import record_episode
from robogate.execution.specs import as_policy
from robogate.execution.trial import validate_env_id
from robogate.reports import ANIMATION_FORMATS
from robogate.sweep.stored import load_sweep

__all__ = ["Replay", "Replayer", "pick_rows", "replay", "row_params", "write_animation"]

_HOLD_SECONDS = 1.0
"""How long an animation dwells on the failure frame."""
_FAILURE_RED = "#d62728"


@dataclass(frozen=True, eq=False)
class Replay:
    """One episode run again, with what was stored about it.

    Attributes
    ----------
    params : dict
        The scenario.
    seed : int
        The episode seed.
    outcome : str
        How the replayed episode ended.
    steps : int
        Its control steps.
    failure_step : int or None
        The 0-based control step of the failure event (None for a success).
    frames : dict of int to ndarray
        Frame ``t`` (the scene after ``t`` control steps, 0 at reset) as an (H, W, 3) uint8 image,
        for the frames asked for.
    stored_outcome, stored_steps : optional
        What the sweep stored for the episode (None when not replayed from a store).
    id : int, optional
        The experiment's id in its sweep.
    path : Path, optional
        The animation written for it.
    """

    params: dict[str, Any]
    seed: int
    outcome: str
    steps: int
    failure_step: int | None
    frames: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    stored_outcome: str | None = None
    stored_steps: int | None = None
    id: int | None = None
    path: Path | None = None

    @property
    def reproduced(self) -> bool:
        """True when the replay ended as stored (or nothing was stored)."""
        return self.stored_outcome is None or self.outcome == self.stored_outcome

    @property
    def failure_frame(self) -> int | None:
        """The frame showing the failure step's result, or None without a failure event (a success, a timeout)."""
        return None if self.failure_step is None else self.failure_step + 1

    @property
    def name(self) -> str:
        """``"experiment 12"``, or ``"seed 7"`` for an episode that is not a sweep row."""
        return f"experiment {self.id}" if self.id is not None else f"seed {self.seed}"

    def describe(self) -> str:
        """One line: what happened, and whether it reproduced the stored outcome."""
        when = f" at step {self.failure_step}" if self.failure_step is not None else ""
        text = f"{self.name}: {self.outcome}{when}, {self.steps} steps"
        if self.stored_outcome is None:
            return text
        if not self.reproduced:
            return (f"{self.name}: NOT REPRODUCED: stored {self.stored_outcome}, replayed {self.outcome}{when} "
                    f"({self.steps} steps)")
        same = self.stored_steps is None or self.stored_steps == self.steps
        return text + (" (reproduced)" if same else f" (outcome reproduced; stored {self.stored_steps} steps)")


class _Camera(gym.Wrapper):
    """Renders the scene at reset and after the control steps asked for (frame ``t``: after ``t`` steps).

    A render that fails is kept in ``broken`` (the episode runs on): raised inside ``step`` it
    would read as the policy's error.
    """

    def __init__(self, env: gym.Env, env_id: str) -> None:
        super().__init__(env)
        self.env_id = env_id
        self.wanted: Iterable[int] | None = ()
        self.frames: dict[int, np.ndarray] = {}
        self.broken: str | None = None
        self._t = 0

    def reset(self, **kwargs: Any) -> Any:
        out = self.env.reset(**kwargs)
        self._t, self.frames, self.broken = 0, {}, None
        self._shoot()
        return out

    def step(self, action: Any) -> Any:
        out = self.env.step(action)
        self._t += 1
        self._shoot()
        return out

    def _shoot(self) -> None:
        if self.broken is None and (self.wanted is None or self._t in self.wanted):
            try:
                with warnings.catch_warnings():  # gymnasium's checker warns of a bad frame; the error says it once
                    warnings.simplefilter("ignore")
                    self.frames[self._t] = _frame(self.env.render())
            except Exception as exc:
                self.broken = " ".join(str(exc).split())[:200] or type(exc).__name__


def _frame(image: Any) -> np.ndarray:
    """``env.render()``'s result as an (H, W, 3) uint8 image; a ``ValueError`` for anything else."""
    array = None if image is None else np.asarray(image)
    if array is None or array.ndim != 3 or array.shape[2] not in (3, 4) or not array.size:
        got = "None" if array is None else f"an array of shape {array.shape}"
        raise ValueError(f"render() returned {got}, not an RGB image")
    if array.dtype.kind == "f" and array.max() <= 1.0:  # an image of floats in [0, 1]
        array = array * 255
    return np.clip(array[..., :3], 0, 255).astype(np.uint8)


def _render_env(env_id: str) -> gym.Env:
    validate_env_id(env_id)
    with warnings.catch_warnings():  # gymnasium warns of an unlisted render mode; the error below says it once
        warnings.simplefilter("ignore")
        try:
            env = gym.make(env_id, render_mode="rgb_array")
        except Exception as exc:
            raise ValueError(f"env {env_id!r} cannot render frames: gymnasium.make(..., render_mode='rgb_array') "
                             f"raised {type(exc).__name__}: {' '.join(str(exc).split())[:200]}; replaying and filming "
                             "need an env that supports render_mode='rgb_array'") from None
    if "rgb_array" not in (env.metadata.get("render_modes") or ()):
        env.close()
        raise ValueError(f"env {env_id!r} cannot render frames: its metadata lists render modes "
                         f"{list(env.metadata.get('render_modes') or [])}, not 'rgb_array'; replaying and filming need "
                         "an env that supports render_mode='rgb_array'")
    return env


class Replayer:
    """An env made once with ``render_mode="rgb_array"`` and a policy built once, to replay episodes with.

    Parameters
    ----------
    env_id : str
        A Gymnasium env id (``module:EnvId`` for an env of your own).
    policy : str or Policy
        A policy spec (as stored with a sweep) or a policy object.

    Raises
    ------
    ValueError
        For an unknown env, an env that cannot render ``rgb_array`` frames, or a bad policy.
    """

    def __init__(self, env_id: str, policy: Any) -> None:
        self.policy = as_policy(policy)
        self.camera = _Camera(_render_env(env_id), env_id)
        self.fps = float(self.camera.metadata.get("render_fps") or 10)

    def run(self, params: dict[str, Any], seed: int, frames: Iterable[int] | str | None = None,
            **stored: Any) -> Replay:
        """Run one episode and keep ``frames``: ``"all"``, some frame numbers, or None (none).

        ``stored`` takes the :class:`Replay` fields ``stored_outcome``, ``stored_steps`` and ``id``.

        Raises
        ------
        ValueError
            For invalid parameters, or an env whose ``render()`` returns no image.
        """
        self.camera.wanted = None if frames == "all" else set(frames or ())
        record, recording = record_episode(self.camera, self.policy, params, int(seed))
        if self.camera.broken is not None:
            raise ValueError(f"env {self.camera.env_id!r} cannot render frames: {self.camera.broken}; replaying and "
                             "filming need an env that supports render_mode='rgb_array'")
        return Replay(params=dict(recording.params), seed=int(seed), outcome=record["outcome"],
                      steps=int(record["steps"]), failure_step=recording.failure_step, frames=self.camera.frames,
                      **stored)

    def close(self) -> None:
        self.camera.close()

    def __enter__(self) -> Replayer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ------------------------------------------------------------------------------------ animation


def write_animation(replay: Replay, path: str | os.PathLike, fps: float = 10.0) -> Path:
    """Write an animated GIF or MP4 (by ``path``'s suffix) of every frame of ``replay``.

    The caption names the episode and its outcome; a timeline under the image marks the
    failure step and moves with the frames; from the failure frame on the image has a red
    border, and the failure frame is held for a second.

    Raises
    ------
    ValueError
        For a suffix other than ``.gif`` or ``.mp4``, a replay without frames, or MP4 without ffmpeg.
    """
    from matplotlib.animation import FFMpegWriter, PillowWriter
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in ANIMATION_FORMATS:
        raise ValueError(f"animation: {path.name} must end in .gif or .mp4")
    if kind == "mp4" and not FFMpegWriter.isAvailable():
        raise ValueError("animation: MP4 needs ffmpeg on the PATH (matplotlib writes MP4 through it); install "
                         "ffmpeg, or write a GIF")
    if not replay.frames:
        raise ValueError(f"animation: {replay.name} was replayed without frames")
    order = sorted(replay.frames)
    height, width = replay.frames[order[0]].shape[:2]
    fig = Figure(figsize=(width / 60, height / 60 + 1.0), dpi=100)
    top = 1 - 0.62 / (height / 60 + 1.0)  # room for two caption lines above the image
    image_ax = fig.add_axes((0.02, 0.16, 0.96, top - 0.16))
    image_ax.set_axis_off()
    shown = image_ax.imshow(replay.frames[order[0]], interpolation="bilinear")
    border = Rectangle((0, 0), 1, 1, transform=image_ax.transAxes, fill=False, lw=6, ec=_FAILURE_RED,
                       visible=False, clip_on=False)
    image_ax.add_patch(border)
    fail = replay.failure_frame
    ended = f"{replay.outcome} at step {replay.failure_step}" if fail is not None else replay.outcome
    check = "" if replay.stored_outcome is None else (
        ", reproduced" if replay.reproduced else f", NOT reproduced (stored {replay.stored_outcome})")
    fig.text(0.5, 1 - 0.08 / (height / 60 + 1.0), f"{replay.name}: {ended}{check}", ha="center", va="top",
             fontsize=10, weight="bold", color=_FAILURE_RED if fail is not None else "#1e6b1a")
    clock = fig.text(0.5, 1 - 0.36 / (height / 60 + 1.0), "", ha="center", va="top", fontsize=9)
    timeline = fig.add_axes((0.06, 0.05, 0.88, 0.05))  # control steps 0..steps-1, one cell each; the start at -1
    timeline.set_xlim(-1.5, replay.steps - 0.5)
    timeline.set_ylim(0, 1)
    timeline.set_yticks([])
    timeline.tick_params(labelsize=7, length=2)
    timeline.axvspan(-1.5, replay.steps - 0.5, color="#dddddd", lw=0)
    if fail is not None:
        timeline.axvspan(replay.failure_step - 0.5, replay.failure_step + 0.5, color=_FAILURE_RED, lw=0)
    cursor = timeline.axvline(-1, color="black", lw=2)
    sequence = list(order)
    if fail is not None and fail in replay.frames:  # dwell on the failure
        at = sequence.index(fail)
        sequence[at:at] = [fail] * max(0, round(_HOLD_SECONDS * fps) - 1)
    writer = PillowWriter(fps=fps) if kind == "gif" else FFMpegWriter(fps=fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    with writer.saving(fig, str(path), dpi=100):
        for t in sequence:
            failed = fail is not None and t >= fail
            shown.set_data(replay.frames[t])
            border.set_visible(failed)
            cursor.set_xdata([t - 1, t - 1])
            clock.set_text(("start" if t == 0 else f"step {t - 1}") + (f"  ·  {replay.outcome}" if failed else ""))
            clock.set_color(_FAILURE_RED if failed else "black")
            writer.grab_frame()
    return path


# --------------------------------------------------------------------------------- sweep rows


def pick_rows(df: pd.DataFrame, ids: Sequence[int] | None = None, outcome: str | None = None,
              count: int = 1) -> pd.DataFrame:
    """The rows of a sweep table to replay: those with ``ids``, or the first ``count`` (by id) that ended ``outcome``.

    Raises
    ------
    ValueError
        Without ids or an outcome, for an id the table lacks, or an outcome no row has.
    """
    if not ids and outcome is None:
        raise ValueError("replay: say which experiments, by id (--id N) or by outcome (--outcome NAME --count K)")
    if ids:
        missing = [i for i in ids if i not in set(df["id"])]
        if missing:
            raise ValueError(f"replay: no experiment with id {missing[0]} in this sweep (its ids run "
                             f"{int(df['id'].min())}–{int(df['id'].max())})")
        return df.set_index("id", drop=False).loc[list(dict.fromkeys(ids))]
    rows = df[df["outcome"].astype(str) == outcome].sort_values("id")
    if not len(rows):
        counts = df["outcome"].astype(str).value_counts()
        raise ValueError(f"replay: no experiment ended {outcome!r}; this sweep's outcomes are "
                         + ", ".join(f"{k} ({v})" for k, v in counts.items()))
    return rows.head(count)


def row_params(row: pd.Series, names: Sequence[str]) -> dict[str, Any]:
    """A stored row's scenario as plain Python values (a numpy number becomes its Python twin)."""
    return {n: row[n].item() if isinstance(row[n], np.generic) else row[n] for n in names}


def replay(
    sweep: str | os.PathLike,
    ids: Sequence[int] | None = None,
    *,
    outcome: str | None = None,
    count: int = 1,
    policy: Any = None,
    out: str | os.PathLike | None = None,
    format: str = "gif",
) -> list[Replay]:
    """Re-run experiments of a stored sweep from their stored parameters and seeds, and film them.

    Parameters
    ----------
    sweep : path
        A sweep folder (``robogate sweep --out``); its env and policy spec are read from it.
    ids : sequence of int, optional
        The experiments to replay.
    outcome : str, optional
        Instead of ids: replay the first ``count`` experiments (by id) that ended so.
    count : int, default 1
    policy : str or Policy, optional
        The policy to replay with; default the sweep's stored spec (needed when the sweep ran a
        policy object, which the store cannot rebuild).
    out : path, optional
        Folder for one animation per experiment (``experiment-ID-OUTCOME.gif``); None writes none.
    format : {"gif", "mp4"}

    Returns
    -------
    list of Replay
        In the order asked for; ``reproduced`` says whether each ended as stored.

    Raises
    ------
    ValueError
        For a bad selection or format, an env that cannot render, or a policy that cannot be rebuilt.
    """
    if format not in ANIMATION_FORMATS:
        raise ValueError(f"replay: format must be one of {', '.join(ANIMATION_FORMATS)}, got {format!r}")
    df = load_sweep(sweep)
    settings = df.attrs["settings"]
    rows = pick_rows(df, ids, outcome, count)
    spec = policy if policy is not None else settings["policy"]
    try:
        replayer = Replayer(settings["env_id"], spec)
    except ValueError as exc:
        if policy is not None or "bad policy spec" not in str(exc):
            raise
        raise ValueError(f"replay: the sweep ran the policy {spec!r}, which is no spec robogate can rebuild (a policy "
                         "object's class name); give its spec with --policy (policy=...)") from None
    replays = []
    with replayer:
        for _, row in rows.iterrows():
            stored = {"stored_outcome": str(row["outcome"]), "id": int(row["id"]),
                      "stored_steps": int(row["steps"]) if "steps" in row and pd.notna(row["steps"]) else None}
            r = replayer.run(row_params(row, settings["space"].names), int(row["seed"]),
                             "all" if out is not None else None, **stored)
            if out is not None:
                path = write_animation(r, Path(out) / f"experiment-{r.id}-{r.outcome}.{format}", replayer.fps)
                r = dataclasses.replace(r, path=path)
            replays.append(r)
    return replays
