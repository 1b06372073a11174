"""Tests of the local and Ray executors."""

import os
import sys
import types

import pandas as pd
import pytest

from robogate import TwoStageSampler, default_space
from robogate._utils.seeding import trial_seed
from robogate.cli.parser import main
from robogate.datasets.store import SweepStore
from robogate.execution import executors
from robogate.execution.executors import LocalExecutor, RayExecutor, executor_names, make_executor, register
from robogate.execution.trial import Trial, run_trial
from robogate.policies import ScriptedPolicy
from robogate.sweep.run import run_sweep
from tests.helpers import ENV_ID, TIMING_COLUMNS, comparable


def trials(n=8, policy="scripted"):
    points = TwoStageSampler(default_space(), n_lhs=n, n_boundary=0, seed=3).ask(n)
    return [Trial(id=i, env_id=ENV_ID, policy=policy, params=p, seed=trial_seed(3, i), stage=1, batch=0)
            for i, p in enumerate(points)]


def table(records):
    return pd.DataFrame(records).drop(columns=TIMING_COLUMNS).sort_values("id").reset_index(drop=True)


@pytest.fixture(scope="module")
def expected():
    """The records of ``trials()`` run in this process."""
    return table([run_trial(t) for t in trials()])


@pytest.mark.slow
def test_local_pool_matches_in_process(local_pool, expected):
    records = list(local_pool.imap_unordered(trials()))
    assert len(records) == 8
    pd.testing.assert_frame_equal(table(records), expected)
    # the workers stay up and give the same again
    pd.testing.assert_frame_equal(table(local_pool.imap_unordered(trials())), expected)
    assert local_pool.workers == 2


@pytest.mark.slow
def test_local_pool_reports_policy_errors(local_pool):
    records = list(local_pool.imap_unordered(trials(3, policy="tests.helpers:RaisingPolicy")))
    assert sorted(r["id"] for r in records) == [0, 1, 2]
    assert all(r["outcome"] == "error" and "exploded" in r["error"] for r in records)


def test_local_pool_propagates_bad_trials(local_pool):
    bad = Trial(id=0, env_id="robogate/Nope-v0", policy="scripted", params={}, seed=0, stage=1, batch=0)
    with pytest.raises(ValueError, match="unknown env id"):
        list(local_pool.imap_unordered([bad]))


@pytest.mark.slow
def test_single_worker_runs_in_process(expected, monkeypatch):
    # A policy importable in this process only (as one defined in a notebook): no worker process could build it.
    here = types.ModuleType("policies_of_this_process")
    here.Scripted = ScriptedPolicy
    monkeypatch.setitem(sys.modules, here.__name__, here)
    with LocalExecutor(workers=1) as ex:
        pd.testing.assert_frame_equal(table(ex.imap_unordered(trials())), expected)
        same = expected.assign(policy="policies_of_this_process:Scripted")
        pd.testing.assert_frame_equal(table(ex.imap_unordered(trials(policy=same["policy"][0]))), same)
    with pytest.raises(RuntimeError, match="closed"):
        list(ex.imap_unordered(trials(1)))


def test_local_defaults_and_validation():
    ex = LocalExecutor()
    assert ex.workers == (os.cpu_count() or 1)
    ex.close()
    for bad in (0, -2, 1.5, True, "2"):
        with pytest.raises(ValueError, match="workers"):
            LocalExecutor(workers=bad)


def test_make_executor():
    with make_executor("local", workers=3) as ex:
        assert isinstance(ex, LocalExecutor) and ex.workers == 3
    with pytest.raises(ValueError, match="unknown executor 'dask'; expected one of: local, ray"):
        make_executor("dask")
    with pytest.raises(ValueError, match="only used by the 'ray' executor"):
        make_executor("local", address="auto")


class InlineExecutor:
    """The smallest executor a user could plug in: runs trials one by one in this process."""

    def __init__(self, workers=None, address=None):
        self.workers, self.address, self.closed, self.ran = 1, address, False, 0

    def imap_unordered(self, trials):
        for trial in trials:
            self.ran += 1
            yield run_trial(trial)

    def close(self):
        self.closed = True


@pytest.mark.slow
def test_a_registered_executor_runs_sweeps_by_name(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(executors, "_FACTORIES", dict(executors._FACTORIES))  # the registry as it was after the test
    made = []
    register("inline", lambda **kw: made.append(InlineExecutor(**kw)) or made[-1])
    assert "inline" in executor_names()
    df = run_sweep(ENV_ID, "scripted", tmp_path / "py", n_lhs=3, n_boundary=1, seed=2, executor="inline",
                   progress=False)
    assert len(df) == 4 and made[-1].ran == 4 and made[-1].closed
    # the command line takes it by name too, and gives the same rows
    assert main(["sweep", "--env", ENV_ID, "--n-lhs", "3", "--n-boundary", "1", "--seed", "2",
                 "--executor", "inline", "--address", "here", "--no-progress", "--out", str(tmp_path / "cli")]) == 0
    assert made[-1].address == "here" and made[-1].ran == 4
    pd.testing.assert_frame_equal(comparable(SweepStore.open(tmp_path / "cli").read()), comparable(df))


def test_register_rejects_bad_names_and_factories():
    with pytest.raises(ValueError, match="non-empty string"):
        register("", InlineExecutor)
    with pytest.raises(ValueError, match="callable"):
        register("x", 42)


def test_ray_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ImportError, match=r"pip install 'robogate\[ray\]'"):
        RayExecutor(workers=1)


@pytest.mark.slow
def test_ray_matches_in_process(ray_executor, expected):
    assert ray_executor.workers == 2
    pd.testing.assert_frame_equal(table(ray_executor.imap_unordered(trials())), expected)
    records = list(ray_executor.imap_unordered(trials(3, policy="tests.helpers:RaisingPolicy")))
    assert all(r["outcome"] == "error" and "exploded" in r["error"] for r in records)
