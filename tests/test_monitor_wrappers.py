"""The monitor in a real control loop: a robogate env, the scripted controller, and each alarm response."""

import gymnasium as gym
import numpy as np
import pytest

import robogate
from robogate.envs.interface import OBS_SLICES
from robogate.monitor import FailureMonitor, MonitoredEnv, MonitoredPolicy, RetreatPolicy, record_rollouts
from robogate.monitor.scores import ObservationRND
from robogate.policies import FlowPolicy, ScriptedPolicy
from tests.helpers import ENV_ID

# A heavy object with its centre of mass far off-centre: once lifted it tilts in the grasp, and
# the scene drifts away from anything seen in nominal episodes half-way through the episode.
SHIFT = {"com_offset": 0.4, "mass": 1.0}
SEED = 100


@pytest.fixture(scope="module")
def monitor() -> FailureMonitor:
    """RND on the observation (the scripted controller has no encoder or sampler), calibrated on 12
    nominal episodes recorded as a user would."""
    rollouts = record_rollouts(ENV_ID, ScriptedPolicy(), episodes=12, params={}, seed=0, progress=False)
    assert rollouts[0].embeddings is None and rollouts[0].action_chunks is None
    return FailureMonitor(alpha=0.25, window=3, scores=[ObservationRND(epochs=30)]).fit(rollouts)


def run(env: gym.Env, policy, seed: int = SEED, params=SHIFT):
    """Drive ``env`` with ``policy`` for one episode; the per-step infos and observations."""
    obs, info = env.reset(seed=seed, options={"params": params})
    infos, observations = [info], [obs]
    while True:
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        infos.append(info)
        observations.append(obs)
        if terminated or truncated:
            return infos, np.array(observations), truncated


def tcp(observations: np.ndarray) -> np.ndarray:
    return observations[:, OBS_SLICES["tcp_position"]]


@pytest.mark.slow
def test_flag_records_the_alarm_and_leaves_the_episode_as_it_was(monitor):
    plain = robogate.run_episode(ENV_ID, ScriptedPolicy(), params=SHIFT, seed=SEED)
    policy = ScriptedPolicy()
    infos, _, _ = run(MonitoredEnv(gym.make(ENV_ID), policy, monitor, on_alarm="flag"), policy)
    last = infos[-1]
    assert (last["outcome"], len(infos) - 1) == (plain["outcome"], plain["steps"])
    assert last["alarm_step"] is not None and 5 < last["alarm_step"] < plain["steps"] - 5
    assert all(i["action_source"] == "policy" for i in infos[1:])
    first = infos[last["alarm_step"] + 1]["monitor"]  # info of the step the alarm was raised at
    assert first.alarm and first.step == last["alarm_step"]
    assert first.scores["obs_rnd"] > first.thresholds["obs_rnd"] and first.above == ("obs_rnd",)


def test_nominal_episode_runs_without_alarm_to_success(monitor):
    policy = ScriptedPolicy()
    infos, _, _ = run(MonitoredEnv(gym.make(ENV_ID), policy, monitor, on_alarm="stop"), policy, seed=500,
                      params={})
    assert infos[-1]["outcome"] == "success" and infos[-1]["alarm_step"] is None


def test_stop_ends_the_episode_at_the_alarm(monitor):
    policy = ScriptedPolicy()
    env = MonitoredEnv(gym.make(ENV_ID), policy, monitor, on_alarm="stop")
    infos, observations, truncated = run(env, policy)
    last = infos[-1]
    assert truncated and last["outcome"] == "stopped" and last["success"] is False
    assert last["action_source"] == "stop" and last["params"]["mass"] == SHIFT["mass"]
    assert len(infos) - 2 == last["alarm_step"]  # the alarm's step was not executed
    assert np.array_equal(observations[-1], observations[-2])
    with pytest.raises(RuntimeError, match="monitor stopped the episode"):
        env.step(np.zeros(5, dtype=np.float32))


@pytest.mark.slow
def test_hold_keeps_the_arm_where_the_alarm_caught_it(monitor):
    policy = ScriptedPolicy()
    _, free, _ = run(MonitoredEnv(gym.make(ENV_ID), policy, monitor, on_alarm="flag"), policy)
    infos, observations, _ = run(MonitoredEnv(gym.make(ENV_ID), policy, monitor, on_alarm="hold"), policy)
    alarm = infos[-1]["alarm_step"]
    assert alarm is not None
    assert all(i["action_source"] == "hold" for i in infos[alarm + 1:])
    after = slice(alarm + 1, alarm + 16)
    moved_free = np.linalg.norm(tcp(free[after]) - tcp(free[after])[0], axis=1).max()
    moved_held = np.linalg.norm(tcp(observations[after]) - tcp(observations[after])[0], axis=1).max()
    assert moved_free > 0.05 and moved_held < 0.01  # the policy would have moved on; the hold did not
    assert len(infos) - 1 > alarm + 20  # it held until the env's own time limit ended the episode


def test_fallback_hands_over_to_a_retreat(monitor):
    policy = ScriptedPolicy()
    env = MonitoredEnv(gym.make(ENV_ID), policy, monitor, on_alarm="fallback", fallback=RetreatPolicy(height=0.3))
    infos, observations, _ = run(env, policy)
    alarm = infos[-1]["alarm_step"]
    assert alarm is not None
    assert all(i["action_source"] == "fallback" for i in infos[alarm + 1:])
    assert tcp(observations)[-1, 2] == pytest.approx(0.3, abs=0.02)  # backed away upwards
    assert infos[-1]["outcome"] == "timeout"  # and waited there, still holding the object


@pytest.mark.slow
def test_policy_wrapper_holds_inside_run_episode(monitor):
    monitored = MonitoredPolicy(ScriptedPolicy(), monitor, on_alarm="hold")
    record = robogate.run_episode(ENV_ID, monitored, params=SHIFT, seed=SEED)
    assert monitored.alarm_step is not None and monitored.source == "hold"
    assert record["steps"] > monitored.alarm_step + 20
    monitored.reset()
    assert monitored.alarm_step is None and monitored.monitor.alarm_step is None


def test_wrappers_reject_bad_setups(monitor):
    env = gym.make(ENV_ID)
    with pytest.raises(ValueError, match="on_alarm must be one of"):
        MonitoredEnv(env, ScriptedPolicy(), monitor, on_alarm="panic")
    with pytest.raises(ValueError, match="needs a fallback policy"):
        MonitoredEnv(env, ScriptedPolicy(), monitor, on_alarm="fallback")
    with pytest.raises(ValueError, match="on_alarm must be one of"):
        MonitoredPolicy(ScriptedPolicy(), monitor, on_alarm="stop")  # a policy cannot end an episode
    with pytest.raises(ValueError, match="policy must have reset"):
        MonitoredPolicy(object(), monitor)
    with pytest.raises(RuntimeError, match="not fitted"):
        MonitoredPolicy(ScriptedPolicy(), FailureMonitor())


@pytest.mark.slow
def test_a_monitor_reading_embeddings_refuses_a_policy_without_them():
    flow = FlowPolicy.pretrained(ENV_ID)
    rollouts = record_rollouts(ENV_ID, flow, episodes=4, params={}, seed=0, n_chunks=0, progress=False)
    monitor = FailureMonitor(alpha=0.5, scores=["rnd"]).fit(rollouts)
    with pytest.raises(ValueError, match=r"scores \['rnd'\] read the policy's embed\(\)"):
        MonitoredEnv(gym.make(ENV_ID), ScriptedPolicy(), monitor)
