"""Behaviour is pinned: seeded episodes and a seeded sweep's stage-1 rows equal the 0.1.0 release's.

``tests/data/reference_0.1.0.json`` was recorded with robogate 0.1.0.  A change that alters any
outcome, step count or sampled point of these runs changes what users' stored sweeps mean, and
must be a deliberate new reference, not an accident of a refactoring.
"""

import json
import warnings
from pathlib import Path

import pytest

import robogate
from robogate.policies import ScriptedPolicy
from robogate.sweep.run import run_sweep
from tests.helpers import TIMING_COLUMNS

REFERENCE = json.loads((Path(__file__).parent / "data" / "reference_0.1.0.json").read_text())


def without_timing(record):
    return {k: v for k, v in record.items() if k not in TIMING_COLUMNS}


@pytest.mark.parametrize("expected", REFERENCE["episodes"],
                         ids=lambda e: f"{e['env_id'].split('-')[1]}-{e['params_in'] or 'nominal'}-{e['seed']}")
def test_seeded_episode_matches_the_reference(expected):
    expected = dict(expected)
    params = expected.pop("params_in")
    record = robogate.run_episode(expected["env_id"], ScriptedPolicy(), params=params, seed=expected["seed"])
    assert without_timing(record) == expected


@pytest.mark.slow
def test_seeded_sweep_stage_1_rows_match_the_reference(tmp_path):
    ref = REFERENCE["sweep"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        df = run_sweep(ref["env_id"], "scripted", tmp_path / "sweep", n_lhs=ref["n_lhs"], n_boundary=0,
                       seed=ref["seed"], executor="local", workers=1, progress=False)
    rows = [without_timing(r) for r in df.to_dict("records")]
    assert rows == ref["rows"]
