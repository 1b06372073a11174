"""Tests of the local and Ray executors."""

import os
import sys

import pandas as pd
import pytest

from robogate import TwoStageSampler, default_space
from robogate.executors import LocalExecutor, RayExecutor, make_executor
from robogate.runner import Trial, run_trial, trial_seed
from tests.helpers import ENV_ID, TIMING_COLUMNS


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


def test_local_pool_matches_in_process(local_pool, expected):
    records = list(local_pool.imap_unordered(trials()))
    assert len(records) == 8
    pd.testing.assert_frame_equal(table(records), expected)
    # the workers stay up and give the same again
    pd.testing.assert_frame_equal(table(local_pool.imap_unordered(trials())), expected)
    assert local_pool.workers == 2


def test_local_pool_reports_policy_errors(local_pool):
    records = list(local_pool.imap_unordered(trials(3, policy="tests.helpers:RaisingPolicy")))
    assert sorted(r["id"] for r in records) == [0, 1, 2]
    assert all(r["outcome"] == "error" and "exploded" in r["error"] for r in records)


def test_local_pool_propagates_bad_trials(local_pool):
    bad = Trial(id=0, env_id="robogate/Nope-v0", policy="scripted", params={}, seed=0, stage=1, batch=0)
    with pytest.raises(ValueError, match="unknown env id"):
        list(local_pool.imap_unordered([bad]))


def test_single_worker_runs_in_process(expected):
    with LocalExecutor(workers=1) as ex:
        pd.testing.assert_frame_equal(table(ex.imap_unordered(trials())), expected)
        assert ex._pool is None
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


def test_ray_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ImportError, match=r"pip install 'robogate\[ray\]'"):
        RayExecutor(workers=1)


def test_ray_matches_in_process(ray_executor, expected):
    assert ray_executor.workers == 2
    pd.testing.assert_frame_equal(table(ray_executor.imap_unordered(trials())), expected)
    records = list(ray_executor.imap_unordered(trials(3, policy="tests.helpers:RaisingPolicy")))
    assert all(r["outcome"] == "error" and "exploded" in r["error"] for r in records)
