"""Record many episodes on the executors, one per ``(params, seed)`` scenario.

Recording runs on the same engine as a sweep: each scenario becomes a
:class:`~robogate.execution.trial.Trial` that captures its steps, any executor runs it with
:func:`~robogate.execution.trial.run_trial` (locally, on Ray, or a user's own), and the
:class:`~robogate.execution.episode.EpisodeRecording` comes back in the trial's record. A policy may
be a spec string or an object (packed once, see :class:`~robogate.execution.specs.PolicyPayload`), so
a policy built in a script records with any number of workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from robogate._utils.console import progress_bar
from robogate.envs.outcomes import Outcome
from robogate.execution.episode import Capture, EpisodeRecording
from robogate.execution.executors import Executor, using_executor
from robogate.execution.specs import cached_policy, policy_reference
from robogate.execution.trial import Trial, check_clock, validate_env_id

__all__ = ["Scenario", "check_no_errors", "record_episodes"]

Scenario = tuple[dict[str, Any], int]
"""Scenario parameters and the episode seed."""


def record_episodes(
    env_id: str,
    policy: Any,
    scenarios: Sequence[Scenario],
    *,
    capture: Capture = Capture(),
    executor: str | Executor = "local",
    workers: int | None = 1,
    address: str | None = None,
    progress: bool | None = None,
    desc: str = "episodes",
) -> list[EpisodeRecording]:
    """Record one episode per ``(params, seed)`` scenario.

    Parameters
    ----------
    env_id : str
    policy : str or Policy
        A policy spec (see :func:`robogate.execution.specs.make_policy`) or a policy object.
    scenarios : sequence of (dict, int)
    capture : Capture
        What to keep of each step beyond the observation and the action.
    executor : str or Executor
        Where episodes run: ``"local"``, ``"ray"`` or a registered executor's name (made here
        and closed after), or an :class:`~robogate.execution.executors.Executor`, used as is and left open.
    workers : int, optional
        Parallel episodes (None: the executor's default, all cores; 1 with ``"local"``:
        in this process); ignored with an Executor.
    address : str, optional
        For executors that take one (e.g. a Ray cluster).
    progress : bool or None
        Draw a progress bar on stderr (None: only when stderr is a terminal).
    desc : str
        Its label.

    Returns
    -------
    list of EpisodeRecording
        In the order of ``scenarios``, errored episodes included (see :func:`check_no_errors`).

    Raises
    ------
    ValueError
        For an unknown env id, a bad policy, a policy without what ``capture`` needs,
        or invalid parameters.
    """
    env_id = validate_env_id(env_id)
    check_clock(env_id)
    reference = policy_reference(policy)
    capture.check(cached_policy(reference))  # in this process, before any work is sent out
    trials = [Trial(id=i, env_id=env_id, policy=reference, params=dict(params), seed=seed, stage=0, batch=0,
                    capture=capture) for i, (params, seed) in enumerate(scenarios)]
    if not trials:
        return []
    if workers is not None:
        workers = min(workers, len(trials))
    results: list[EpisodeRecording | None] = [None] * len(trials)
    with (using_executor(executor, workers, address) as runner,
          progress_bar(progress, total=len(trials), desc=desc, unit="ep") as bar):
        for record in runner.imap_unordered(trials):
            results[record["id"]] = record["recording"]
            bar.update()
    return [r for r in results if r is not None]


def check_no_errors(recordings: Sequence[EpisodeRecording], what: str = "episodes") -> None:
    """Raise ``ValueError`` when an episode ended in ``error``: a broken harness, not a failure.

    The message counts them and quotes the first error.
    """
    errored = [r for r in recordings if r.outcome == Outcome.ERROR.value]
    if errored:
        first = (errored[0].error or "no message").strip().splitlines()[0]
        raise ValueError(f"{len(errored)} of {len(recordings)} {what} ended in error (the policy raised or the "
                         f"simulation diverged), so they say nothing about failures; first: {first}")
