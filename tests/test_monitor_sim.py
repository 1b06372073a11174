"""The default monitor on the shipped learned policy, in simulated scenes."""

import pytest

from robogate.monitor import FailureMonitor, record_rollouts
from robogate.policies import FlowPolicy
from tests.helpers import ENV_ID

FAR = {"shape": "cylinder", "size": 0.095, "mass": 0.9, "obstacles": 3, "placement": "raised_high"}
"""Far outside the training envelope: the shipped policy collides in every episode."""


@pytest.mark.slow
def test_the_default_monitor_warns_before_the_collisions_of_a_far_shifted_scene():
    flow = FlowPolicy.pretrained(ENV_ID)
    calibration = record_rollouts(ENV_ID, flow, episodes=48, seed=0, n_chunks=0, workers=2, progress=False)
    monitor = FailureMonitor().fit(calibration)  # nothing spelled out: the defaults must work
    shifted = record_rollouts(ENV_ID, flow, episodes=6, params=FAR, seed=1, n_chunks=0, workers=2, progress=False)
    assert all(not r.success for r in shifted)
    for rollout in shifted:
        trace = monitor.trace(rollout)
        assert trace.alarm_step is not None and trace.alarm_step <= rollout.failure_step, rollout.outcome
