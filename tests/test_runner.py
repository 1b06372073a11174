"""Tests of the trial runner: records, per-process caches, policy specs, seeds."""

import pickle

import numpy as np
import pytest

import robogate
from robogate._utils.seeding import trial_seed
from robogate.execution.specs import make_policy, validate_policy_spec
from robogate.execution.trial import Trial, run_trial, validate_env_id
from tests.helpers import ENV_ID, CountedScriptedPolicy, NotAPolicy, ThreadCounting

PARAMS = {"friction": 0.9, "mass": 0.3, "size": 0.05, "placement": "left"}


def make_trial(i=0, policy="scripted", params=PARAMS, seed=None, env_id=ENV_ID):
    return Trial(id=i, env_id=env_id, policy=policy, params=dict(params),
                 seed=trial_seed(7, i) if seed is None else seed, stage=1, batch=0)


def test_trial_seed_is_the_spawned_child():
    for sweep_seed in (0, 1, 12345, 2**40 + 3):
        children = np.random.SeedSequence(sweep_seed).spawn(12)
        for index in (0, 1, 5, 11):
            expected = int(children[index].generate_state(1)[0])
            assert trial_seed(sweep_seed, index) == expected
    seeds = [trial_seed(0, i) for i in range(200)]
    assert len(set(seeds)) == 200
    assert all(isinstance(s, int) and 0 <= s < 2**32 for s in seeds)
    assert trial_seed(1, 0) != trial_seed(0, 0)


@pytest.mark.parametrize("bad", [(-1, 0), (0, -1), (1.5, 0), (0, True), ("0", 0)])
def test_trial_seed_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="non-negative integer"):
        trial_seed(*bad)


def test_trial_is_frozen_and_picklable():
    t = make_trial(3)
    assert pickle.loads(pickle.dumps(t)) == t
    with pytest.raises(AttributeError):
        t.seed = 1
    row = t.plan_row()
    assert row["id"] == 3 and row["stage"] == 1 and row["batch"] == 0 and row["seed"] == t.seed
    assert row["friction"] == 0.9 and row["placement"] == "left"


@pytest.mark.slow
def test_run_trial_record_and_reproducibility():
    t = make_trial(4)
    rec = run_trial(t)
    assert (rec["id"], rec["stage"], rec["batch"], rec["policy"]) == (4, 1, 0, "scripted")
    assert rec["env_id"] == ENV_ID and rec["seed"] == t.seed
    assert list(rec)[:3] == ["id", "stage", "batch"]
    for name in robogate.default_space().names:
        assert name in rec
    assert rec["friction"] == 0.9 and rec["obstacles"] == 0  # nominal fill
    assert rec["outcome"] in {"success", "grasp_miss", "grip_loss", "collision", "placement_error", "timeout"}
    # the cached env gives exactly what a fresh env gives, whatever ran before
    run_trial(make_trial(5, params={"mass": 1.9, "obstacles": 3, "shape": "sphere"}))
    again = run_trial(t)
    fresh = robogate.run_episode(ENV_ID, robogate.policies.ScriptedPolicy(), t.params, t.seed)
    for key in ("outcome", "success", "steps", "sim_time", "error", *robogate.default_space().names):
        assert again[key] == rec[key] == fresh[key], key


@pytest.mark.slow
def test_a_policy_is_built_once_per_process_however_many_trials_it_runs():
    spec = "tests.helpers:CountedScriptedPolicy"  # a checkpoint a policy loads is loaded once per worker
    before = CountedScriptedPolicy.built
    records = [run_trial(make_trial(i, policy=spec)) for i in range(3)]
    assert CountedScriptedPolicy.built - before == 1
    assert [r["outcome"] for r in records] == [run_trial(make_trial(i))["outcome"] for i in range(3)]


def test_raising_policy_gives_an_error_row():
    rec = run_trial(make_trial(0, policy="tests.helpers:RaisingPolicy"))
    assert rec["outcome"] == "error" and rec["success"] is False
    assert "policy exploded on purpose" in rec["error"]
    assert rec["policy"] == "tests.helpers:RaisingPolicy"


def test_unknown_env_id_lists_the_valid_ids():
    with pytest.raises(ValueError) as info:
        validate_env_id("robogate/PickPlace-Nope-v0")
    for env_id in robogate.ENV_IDS:
        assert env_id in str(info.value)
    with pytest.raises(ValueError, match="unknown env id 'nosuch_module:Slide-v0': cannot import module"):
        validate_env_id("nosuch_module:Slide-v0")
    with pytest.raises(ValueError, match="'CartPole-v1' declares no scenario space"):
        run_trial(make_trial(env_id="CartPole-v1"))  # a Gymnasium env, but not a scenario to sweep
    assert validate_env_id(ENV_ID) == ENV_ID


@pytest.mark.parametrize(
    "spec, message",
    [
        ("nope", "not a known policy name"),
        ("no_such_module_xyz:Policy", "cannot import module 'no_such_module_xyz'"),
        ("tests.helpers:Missing", "has no attribute 'Missing'"),
        ("tests.helpers:NOT_CALLABLE", "is not callable"),
        ("tests.helpers:NotAPolicy", "without act"),
        ("tests.helpers:failing_factory", "raised OSError: weights file missing"),
        ("tests.helpers:", "not of the form"),
        (":RaisingPolicy", "not of the form"),
    ],
)
def test_bad_policy_specs_are_named(spec, message):
    with pytest.raises(ValueError, match=message) as info:
        validate_policy_spec(spec)
    assert repr(spec) in str(info.value)


@pytest.mark.parametrize("spec", ["", None, 3])
def test_policy_spec_must_be_a_string(spec):
    with pytest.raises(ValueError, match="non-empty string"):
        make_policy(spec)


def test_good_policy_specs():
    assert validate_policy_spec("scripted") == "scripted"
    assert validate_policy_spec("tests.helpers:RaisingPolicy") == "tests.helpers:RaisingPolicy"
    assert isinstance(make_policy("scripted"), robogate.policies.ScriptedPolicy)
    # a dotted attribute path works too
    assert type(make_policy("robogate:policies.ScriptedPolicy")).__name__ == "ScriptedPolicy"


def test_run_episode_takes_a_policy_spec():
    record = robogate.run_episode(ENV_ID, "scripted", seed=0)
    assert record["outcome"] == "success" and record["error"] is None


@pytest.mark.parametrize("policy, message", [
    ("nosuch:Policy", "bad policy spec 'nosuch:Policy'"),
    (NotAPolicy(), r"not a policy: a NotAPolicy without act\(\)"),
    (object(), r"not a policy: a object without reset\(\) and act\(\)"),
])
def test_run_episode_refuses_an_unusable_policy_before_it_starts(policy, message, monkeypatch):
    import gymnasium

    monkeypatch.setattr(gymnasium, "make", lambda *a, **k: pytest.fail("an env was made for an unusable policy"))
    with pytest.raises(ValueError, match=message):
        robogate.run_episode(ENV_ID, policy, seed=0)


# ------------------------------------------------------------------------------ torch threads


def test_a_policy_object_runs_torch_on_one_thread_and_the_callers_setting_is_restored():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        record = robogate.run_episode(ENV_ID, ThreadCounting(), seed=0)
        assert record["outcome"] == "success", record["error"]
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_more_threads_are_asked_for_through_the_environment(monkeypatch):
    import torch

    from robogate._utils.threads import THREADS_VARIABLE

    monkeypatch.setenv(THREADS_VARIABLE, "2")
    record = robogate.run_episode(ENV_ID, ThreadCounting(expected=2), seed=0)
    assert record["outcome"] == "success", record["error"]
    monkeypatch.setenv(THREADS_VARIABLE, "many")
    with pytest.raises(ValueError, match="ROBOGATE_TORCH_THREADS must be a positive integer"):
        robogate.run_episode(ENV_ID, ThreadCounting(), seed=0)
    assert torch.get_num_threads() >= 1


@pytest.mark.slow
def test_a_policy_object_runs_on_one_thread_in_every_worker(local_pool):
    from robogate.execution.specs import policy_reference

    packed = policy_reference(ThreadCounting())
    records = list(local_pool.imap_unordered(make_trial(i, packed, params={}) for i in range(4)))
    assert [r["outcome"] for r in records] == ["success"] * 4, [r["error"] for r in records]


def test_the_shipped_flow_policy_runs_on_one_thread_in_a_loop_of_your_own(monkeypatch):
    import torch

    from robogate.policies import FlowPolicy

    flow = FlowPolicy.pretrained(ENV_ID)
    seen = []
    sample = flow.net.sample
    monkeypatch.setattr(flow.net, "sample", lambda *a: seen.append(torch.get_num_threads()) or sample(*a))
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        obs = np.zeros(flow.config.obs_size, dtype=np.float32)
        flow.act(obs), flow.sample_chunks(obs, 2)
        assert seen == [1, 1] and torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------------------ seeds


def test_a_sweep_row_replays_from_its_numpy_seed(tmp_path):
    from robogate.sweep.run import run_sweep

    df = run_sweep(ENV_ID, "scripted", tmp_path / "s", n_lhs=2, n_boundary=0, workers=1, progress=False)
    space = robogate.default_space()
    for i in range(len(df)):
        row, seed = df.iloc[i], df["seed"].iloc[i]
        assert isinstance(seed, np.integer)
        record = robogate.run_episode(ENV_ID, "scripted", params=row[space.names].to_dict(), seed=seed)
        assert record["outcome"] == row["outcome"] and record["steps"] == row["steps"]
        assert type(record["seed"]) is int
