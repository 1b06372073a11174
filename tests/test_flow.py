"""Tests of the learned FlowPolicy: training end to end, checkpoints, seeded sampling, bad input."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import robogate
from robogate._utils.seeding import trial_seed
from robogate.envs.outcomes import OUTCOMES
from robogate.execution.specs import make_policy
from robogate.policies import FlowPolicy, Policy
from robogate.policies.flow import CHECKPOINT_FORMAT, FlowConfig
from robogate.training.demonstrations import record_demos, sample_envelope
from robogate.training.flow import TrainConfig, chunk_examples, train_flow_policy
from tests.helpers import ENV_ID

TINY = FlowConfig(hidden=32, embed_dim=16, depth=2, flow_steps=4)


@pytest.fixture(scope="module")
def demos_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demos")
    record_demos(ENV_ID, 4, out, seed=0, workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def tiny(demos_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("flow")
    result = train_flow_policy(demos_dir, out, config=TINY, train=TrainConfig(epochs=3, batch_size=64),
                               progress=False)
    return result


@pytest.fixture(scope="module")
def env():
    import gymnasium as gym

    e = gym.make(ENV_ID)
    yield e
    e.close()


def actions_over_episode(policy, env, seed, watch=False):
    obs, _ = env.reset(seed=seed)
    policy.reset(seed=seed)
    actions = []
    for _ in range(12):
        if watch:
            policy.embed(obs)
            policy.sample_chunks(obs, 8)
        action = policy.act(obs)
        actions.append(action)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    return np.array(actions)


def test_config_is_checked():
    with pytest.raises(ValueError, match="n_action_steps"):
        FlowConfig(horizon=4, n_action_steps=5)
    with pytest.raises(ValueError, match="hidden must be a positive integer"):
        FlowConfig(hidden=0)
    with pytest.raises(ValueError, match="horizon"):
        FlowConfig(horizon=2.5)


def test_chunk_examples_pad_with_the_last_action(demos_dir):
    from robogate.training.demonstrations import load_demos

    episodes, _ = load_demos(demos_dir)
    obs, chunks = chunk_examples(episodes[:1], horizon=6)
    actions = episodes[0].actions
    assert obs.shape == (len(actions), 43) and chunks.shape == (len(actions), 6, 5)
    np.testing.assert_array_equal(chunks[0].numpy(), actions[:6])
    np.testing.assert_array_equal(chunks[-1].numpy(), np.repeat(actions[-1:], 6, axis=0))


def test_tiny_training_runs_an_episode_end_to_end(tiny, tmp_path):
    policy = tiny.policy
    assert isinstance(policy, Policy)
    assert tiny.path.is_file() and (tiny.path.parent / "loss.png").stat().st_size > 0
    assert (tiny.path.parent / "training.json").is_file()
    assert list(tiny.history.columns) == ["epoch", "train_loss", "val_loss", "seconds"]
    assert np.all(np.isfinite(tiny.history[["train_loss", "val_loss"]].to_numpy()))
    assert tiny.train_episodes + tiny.val_episodes == 4 and tiny.val_episodes >= 1
    record = robogate.run_episode(ENV_ID, policy, seed=3)
    assert record["outcome"] in OUTCOMES and record["steps"] >= 1
    assert record["error"] is None


def test_checkpoint_round_trip_gives_identical_actions(tiny, env, tmp_path):
    path = tiny.policy.save(tmp_path / "p.pt")
    raw = torch.load(path, weights_only=True)  # plain containers and tensors only
    assert raw["format"] == CHECKPOINT_FORMAT and raw["env_id"] == ENV_ID
    loaded = FlowPolicy.load(path)
    assert loaded.config == tiny.policy.config and loaded.envelope == tiny.policy.envelope
    for seed in (0, 11):
        np.testing.assert_array_equal(actions_over_episode(tiny.policy, env, seed),
                                      actions_over_episode(loaded, env, seed))


def test_seeded_episodes_reproduce_and_seeds_matter(tiny, env):
    a = actions_over_episode(tiny.policy, env, 5)
    np.testing.assert_array_equal(a, actions_over_episode(tiny.policy, env, 5))
    obs, _ = env.reset(seed=0)
    first = []
    for seed in (1, 2, 3):
        tiny.policy.reset(seed=seed)
        first.append(tiny.policy.act(obs))
    assert not np.allclose(first[0], first[1]) and not np.allclose(first[1], first[2])
    r1 = robogate.run_episode(env, tiny.policy, seed=8)
    r2 = robogate.run_episode(env, tiny.policy, seed=8)
    for key in ("outcome", "steps", "sim_time"):
        assert r1[key] == r2[key]


def test_watching_the_policy_does_not_change_its_actions(tiny, env):
    np.testing.assert_array_equal(actions_over_episode(tiny.policy, env, 4),
                                  actions_over_episode(tiny.policy, env, 4, watch=True))


def test_sample_chunks_and_embed_shapes(tiny, env):
    obs, _ = env.reset(seed=1)
    policy = tiny.policy
    for n in (1, 32):
        chunks = policy.sample_chunks(obs, n)
        assert chunks.shape == (n, TINY.horizon, 5) and chunks.dtype == np.float32
        assert np.all(np.isfinite(chunks))
    assert policy.sample_chunks(obs, 16).std(axis=0).mean() > 0  # a distribution, not one chunk
    e = policy.embed(obs)
    assert e.shape == (TINY.embed_dim,) and np.all(np.isfinite(e))
    np.testing.assert_array_equal(e, policy.embed(obs))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        policy.sample_chunks(obs, 0)


def test_bad_observations_are_refused(tiny):
    with pytest.raises(ValueError, match=r"obs must have shape \(43,\).*got \(45,\)"):
        tiny.policy.act(np.zeros(45, dtype=np.float32))
    bad = np.zeros(43, dtype=np.float32)
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tiny.policy.embed(bad)


def test_checkpoint_for_another_observation_size(tiny, tmp_path):
    other = FlowPolicy(FlowConfig(obs_size=45, hidden=32, embed_dim=16, depth=2), env_id="some/Other-v0")
    other.save(tmp_path / "other.pt")
    loaded = FlowPolicy.load(tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"\(45,\).*some/Other-v0.*got \(43,\)"):
        loaded.act(np.zeros(43, dtype=np.float32))
    from robogate.monitor import record_rollouts

    with pytest.raises(ValueError, match=r"obs must have shape \(45,\)"):
        record_rollouts(ENV_ID, loaded, episodes=1, n_chunks=2)


def test_bad_checkpoints_give_clear_errors(tiny, tmp_path):
    ckpt = torch.load(tiny.path, weights_only=True)
    ckpt["config"]["hidden"] = 64  # weights of a 32-wide net under a 64-wide config
    torch.save(ckpt, tmp_path / "arch.pt")
    with pytest.raises(ValueError, match="do not match the FlowPolicy architecture"):
        FlowPolicy.load(tmp_path / "arch.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a FlowPolicy checkpoint"):
        FlowPolicy.load(tmp_path / "foreign.pt")
    data = tiny.path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut.pt is not a FlowPolicy checkpoint: torch.load cannot read it"):
        FlowPolicy.load(tmp_path / "cut.pt")
    # a text file and a few bytes: one short sentence, not torch's advice to unpickle anyway
    (tmp_path / "hello.pt").write_text("hello")
    for path in (Path(__file__).parents[1] / "README.md", tmp_path / "hello.pt"):
        with pytest.raises(ValueError, match="is not a FlowPolicy checkpoint") as info:
            FlowPolicy.load(path)
        message = str(info.value)
        assert len(message) < 250 and "weights_only" not in message and "KeyError: 101" not in message
    with pytest.raises(ValueError, match="no FlowPolicy checkpoint"):
        FlowPolicy.load(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="no pretrained FlowPolicy"):
        FlowPolicy.pretrained("robogate/PickPlace-Nope-v0")


def test_training_input_errors(tmp_path, demos_dir):
    with pytest.raises(ValueError, match="no demonstrations in"):
        train_flow_policy(tmp_path, progress=False)
    from robogate.training.demonstrations import load_demos

    episodes, _ = load_demos(demos_dir)
    failed = [type(e)(**{**e.__dict__, "outcome": "grasp_miss"}) for e in episodes]
    with pytest.raises(ValueError, match="none of the 4 demonstrations .* succeeded"):
        train_flow_policy(failed, progress=False)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="val_fraction"):
        TrainConfig(val_fraction=0.9)


def test_policy_specs(tiny):
    policy = make_policy(f"flow:{tiny.path}")
    assert isinstance(policy, FlowPolicy) and policy.config == TINY
    with pytest.raises(ValueError, match="no FlowPolicy checkpoint"):
        make_policy("flow:does/not/exist.pt")
    with pytest.raises(ValueError, match="needs a checkpoint path"):
        make_policy("flow:")
    # the folder 'robogate policy train' writes is a checkpoint spec too
    assert make_policy(f"flow:{tiny.path.parent}").config == TINY
    with pytest.raises(ValueError, match=r"no FlowPolicy checkpoint in .*: expected .*policy.pt"):
        make_policy(f"flow:{Path(__file__).parent}")
    assert isinstance(make_policy("flow"), FlowPolicy)


def test_pretrained_checkpoint_loads():
    flow = FlowPolicy.pretrained(ENV_ID)
    assert flow.env_id == ENV_ID and flow.envelope is not None
    assert flow.config.obs_size == 43


@pytest.mark.slow
def test_pretrained_policy_succeeds_at_nominal_and_over_its_envelope(env):
    """A cheap version of scripts/eval_flow.py (100 + 100 episodes, >= 90 % / >= 80 %)."""
    flow = FlowPolicy.pretrained(ENV_ID)
    nominal = Counter(robogate.run_episode(env, flow, seed=trial_seed(77, i))["outcome"] for i in range(20))
    cases = sample_envelope(flow.envelope, 20, seed=77)
    spread = Counter(robogate.run_episode(env, flow, params=p, seed=trial_seed(78, i))["outcome"]
                     for i, p in enumerate(cases))
    assert nominal["success"] >= 16, nominal
    assert spread["success"] >= 14, spread


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local_pool", "ray_executor"])
def test_flow_sweeps_alike_in_process_and_on_executors(executor, request):
    """Each worker loads the checkpoint once; seeded sampling makes every executor agree."""
    import pandas as pd

    from robogate.execution.trial import Trial, run_trial
    from tests.helpers import TIMING_COLUMNS

    cases = sample_envelope(None, 4, seed=5)
    trials = [Trial(id=i, env_id=ENV_ID, policy="flow", params=p, seed=trial_seed(5, i), stage=1, batch=0)
              for i, p in enumerate(cases)]

    def table(records):
        return pd.DataFrame(records).drop(columns=TIMING_COLUMNS).sort_values("id").reset_index(drop=True)

    expected = table(run_trial(t) for t in trials)
    got = table(request.getfixturevalue(executor).imap_unordered(trials))
    pd.testing.assert_frame_equal(got, expected)
    assert set(expected["policy"]) == {"flow"} and expected["error"].isna().all()
