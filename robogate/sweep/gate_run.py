"""Run a finished sweep's gate until it is decided: experiments uniformly inside an envelope, appended as stage-3 rows.

:func:`run_gate` draws each experiment's scene from its own seed, runs batches on the sweep's env
and policy, and looks at the anytime-valid bound after each (see :func:`~robogate.analysis.stats.sequential_gate`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from robogate._utils.checks import check_int, check_level
from robogate._utils.console import progress_bar
from robogate._utils.seeding import trial_seed
from robogate.analysis.gating import as_envelope, check_harness, evidence, name_left_out
from robogate.analysis.stats import GateDecision, decide, sequential_gate
from robogate.datasets.stages import STAGE_GATE, errored
from robogate.datasets.store import SweepStore
from robogate.execution.executors import Executor, make_executor
from robogate.execution.specs import policy_label, validate_policy
from robogate.execution.trial import Trial
from robogate.scenarios.envelope import Envelope
from robogate.sweep.stored import sweep_settings

__all__ = ['run_gate']


def _row_seed(sweep_seed: int, index: int) -> np.random.SeedSequence:
    """Seed of the envelope point of gate experiment ``index`` (its episode seed is ``trial_seed``)."""
    return np.random.SeedSequence(sweep_seed, spawn_key=(index, STAGE_GATE))


def run_gate(
    path: str | os.PathLike,
    envelope: Mapping[str, Any] | Envelope | None,
    max_failure_rate: float = 0.05,
    confidence: float = 0.95,
    *,
    max_experiments: int = 1000,
    batch_size: int = 20,
    policy: Any = None,
    executor: Any = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: bool | None = None,
) -> GateDecision:
    """Run experiments inside an envelope until the gate's verdict is decided.

    Points are drawn uniformly inside the envelope, run on the sweep's env
    and policy, and appended to the sweep store as stage-3 rows (ids after
    the sweep's, the episode seed :func:`~robogate._utils.seeding.trial_seed` of the
    sweep seed and the id, and an ``envelope`` column), after each batch.  The
    existing uniform evidence counts too, and every look uses the confidence
    sequence (see :func:`~robogate.analysis.stats.sequential_gate`).  A killed run loses at most the
    batch in flight; running again continues from the stored rows.

    Parameters
    ----------
    path : str or os.PathLike
        A finished sweep's folder.
    envelope, max_failure_rate, confidence
        As for :func:`robogate.gate`.
    max_experiments : int, default 1000
        At most this many new experiments.
    batch_size : int, default 20
        Experiments between looks.
    policy : policy object, optional
        The object a sweep of a policy object ran (the stored spec otherwise).
    executor, workers, address
        As for :func:`run_sweep`.
    progress : bool or None
        Draw a progress bar on stderr (None: only when stderr is a terminal).

    Returns
    -------
    GateDecision
        ``ran`` is the number of experiments run.  An errored experiment
        (already inside the envelope, or in a batch) stops the run with an
        ``"error"`` verdict.

    Raises
    ------
    ValueError
        For a bad envelope or setting, or a sweep that is not finished (its
        ids would clash with the rows the gate adds).
    """
    settings = sweep_settings(path)
    envelope = as_envelope(envelope, settings["space"])
    check_level(max_failure_rate, "max_failure_rate")
    check_level(confidence, "confidence")
    batch_size = check_int(batch_size, "batch_size", 1)
    max_experiments = check_int(max_experiments, "max_experiments")
    policy = _swept_policy(path, settings, policy)
    store = SweepStore.open(path)
    df = store.read()
    rows = evidence(df, settings["space"], envelope)
    failures = int((~rows["success"].astype(bool)).sum())
    broken = check_harness(decide(failures, len(rows), max_failure_rate, confidence, sequential=True),
                           df[envelope.mask(df)])
    if broken.verdict == "error":  # no experiment is run on a broken harness
        return name_left_out(broken, envelope)
    if not isinstance(executor, (str, Executor)):
        raise ValueError(f"executor must be a name or an Executor, got {type(executor).__name__}")
    own = isinstance(executor, str)
    ex = make_executor(executor, workers, address) if own else executor
    bar = progress_bar(progress, total=max_experiments, desc="gate", unit="ep")
    runs = _GateRuns(store, df, settings, envelope, policy, ex, bar)
    try:
        decision = sequential_gate(
            runs.draw, max_failure_rate, confidence, n=len(rows), failures=failures, batch_size=batch_size,
            max_experiments=max_experiments,
            on_look=lambda failed, n: bar.set_postfix_str(f"{failed} of {n} failed", refresh=False),
        )
    except _HarnessError:
        batch = pd.DataFrame(runs.records)
        new_failures = int((~batch["success"].astype(bool)).sum())
        decision = check_harness(
            decide(failures + new_failures, len(rows) + len(batch), max_failure_rate, confidence, sequential=True),
            pd.concat([df[envelope.mask(df)], batch], ignore_index=True))
        decision = dataclasses.replace(
            decision, ran=len(batch), reason=decision.reason[:-1] + f" (after running {len(batch)} experiments).")
    finally:
        bar.close()
        if own:
            ex.close()
    return name_left_out(decision, envelope)


def _swept_policy(path: Any, settings: Mapping[str, Any], policy: Any) -> Any:
    """The policy the gate runs: the sweep's own (given again when it was an object), of a finished sweep."""
    policy = validate_policy(settings["policy"] if policy is None else policy)
    if policy_label(policy) != settings["policy"]:
        raise ValueError(f"the sweep in {path} ran {settings['policy']}, not {policy_label(policy)}: the gate's "
                         "experiments must run the swept policy")
    if not settings["complete"]:
        raise ValueError(
            f"the sweep in {path} is not finished; finish it first (robogate sweep --out {path} --resume) "
            "so that the gate's experiments do not take ids it still needs"
        )
    return policy


class _GateRuns:
    """The gate's experiments, a batch at a time: drawn inside the envelope, run, appended to the sweep."""

    def __init__(self, store: SweepStore, df: pd.DataFrame, settings: Mapping[str, Any], envelope: Envelope,
                 policy: Any, ex: Executor, bar: Any) -> None:
        planned = store.planned()
        self.next_id = int(max(df["id"].max() if len(df) else -1, planned["id"].max() if len(planned) else -1)) + 1
        self.next_batch = int(max(df["batch"].max() if "batch" in df and len(df) else -1,
                                  planned["batch"].max() if "batch" in planned and len(planned) else -1)) + 1
        self.store, self.settings, self.envelope = store, settings, envelope
        self.policy, self.ex, self.bar = policy, ex, bar
        self.label = envelope.to_json()
        self.records: list[dict] = []
        """Every record stored so far, for the verdict on an errored batch."""

    def draw(self, m: int) -> np.ndarray:
        """Run ``m`` more experiments; whether each failed, in id order."""
        seed = self.settings["seed"]
        ids = range(self.next_id, self.next_id + m)
        points = self.envelope.points([_row_seed(seed, i) for i in ids])
        trials = [Trial(id=i, env_id=self.settings["env_id"], policy=self.policy, params=p, seed=trial_seed(seed, i),
                        stage=STAGE_GATE, batch=self.next_batch) for i, p in zip(ids, points)]
        records = []
        for record in self.ex.imap_unordered(trials):
            records.append({**record, "envelope": self.label})
            self.bar.update(1)
        self.store.append(records)
        self.next_id, self.next_batch = self.next_id + m, self.next_batch + 1
        self.records.extend(records)
        if errored(pd.DataFrame(records)).any():
            raise _HarnessError
        failed = {r["id"]: not r["success"] for r in records}
        return np.array([failed[i] for i in ids])


class _HarnessError(Exception):
    """A batch of :func:`run_gate` held an errored experiment: the run stops there."""
