"""Tests of rollout recording: what is recorded, the Parquet round trip, damaged files, failure steps."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robogate._utils.seeding import trial_seed
from robogate.cli.parser import main
from robogate.datasets.episodes import read_episodes, write_episodes
from robogate.execution.batch import record_episodes
from robogate.execution.episode import Capture, EpisodeRecording, record_episode
from robogate.monitor import Rollout, load_rollouts, record_rollouts
from robogate.monitor.recording import ROLLOUTS_FILE, rollout_scenarios
from robogate.policies import FlowPolicy, ScriptedPolicy
from tests.helpers import ENV_ID


@pytest.fixture(scope="module")
def flow():
    return FlowPolicy.pretrained(ENV_ID)


@pytest.fixture(scope="module")
def recorded(flow, tmp_path_factory):
    out = tmp_path_factory.mktemp("rollouts")
    rollouts = record_rollouts(ENV_ID, flow, episodes=2, params={"size": 0.04}, seed=3, n_chunks=4, out=out,
                               progress=False)
    return rollouts, out / ROLLOUTS_FILE


def same_arrays(a, b):
    for name in ("observations", "actions", "embeddings", "action_chunks"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.mark.slow
def test_rollouts_carry_what_the_monitor_reads(recorded, flow):
    rollouts, _ = recorded
    assert len(rollouts) == 2
    for r in rollouts:
        assert isinstance(r, Rollout)
        T = r.steps
        assert r.embeddings.shape == (T, flow.config.embed_dim)
        assert r.action_chunks.shape == (T, 4, flow.config.horizon, 5)
        assert r.observations.shape == (T, 43) and r.actions.shape == (T, 5)
        assert r.params["size"] == 0.04 and r.params["friction"] == 0.8
        assert (r.failure_step is None) == (r.success or r.outcome == "timeout")
        if r.failure_step is not None:
            assert 0 <= r.failure_step < T


def test_recording_is_reproducible(recorded, flow):
    again = record_rollouts(ENV_ID, flow, episodes=2, params={"size": 0.04}, seed=3, n_chunks=4, progress=False)
    for a, b in zip(recorded[0], again):
        np.testing.assert_array_equal(a.embeddings, b.embeddings)
        np.testing.assert_array_equal(a.action_chunks, b.action_chunks)
        assert (a.outcome, a.failure_step) == (b.outcome, b.failure_step)


def test_file_reloads_to_the_same_arrays(recorded, flow):
    rollouts, path = recorded
    episodes, meta = read_episodes(path)
    assert meta["env_id"] == ENV_ID and meta["episodes"] == 2 and meta["shapes"]["action_chunks"] == [4, 8, 5]
    for r, e in zip(rollouts, episodes):
        np.testing.assert_array_equal(r.embeddings, e.embeddings)
        np.testing.assert_array_equal(r.action_chunks, e.action_chunks)
        assert (r.outcome, r.failure_step, r.params) == (e.outcome, e.failure_step, e.params)
        assert e.observations.shape == (r.steps, 43) and e.actions.shape == (r.steps, 5)
    for a, b in zip(load_rollouts(path.parent), rollouts):  # the folder works too
        np.testing.assert_array_equal(a.action_chunks, b.action_chunks)
        assert a.success == b.success
    # A plain LeRobot-style table: one row per step.
    df = pd.read_parquet(path)
    assert {"episode_index", "frame_index", "timestamp", "observation.state", "action", "embedding",
            "action_chunks", "outcome", "success", "params", "failure_step", "seed"} <= set(df.columns)
    assert len(df) == sum(r.steps for r in rollouts)
    assert json.loads(df["params"].iloc[0])["size"] == 0.04


def test_write_read_round_trip_exact(tmp_path):
    rng = np.random.default_rng(0)
    eps = [EpisodeRecording(
        observations=rng.normal(size=(T, 43)).astype(np.float32), actions=rng.normal(size=(T, 5)).astype(np.float32),
        outcome=outcome, params={"friction": 0.5}, seed=s, failure_step=fs,
        embeddings=rng.normal(size=(T, 7)).astype(np.float32),
        action_chunks=rng.normal(size=(T, 3, 4, 5)).astype(np.float32),
    ) for T, outcome, s, fs in ((5, "success", 1, None), (9, "grip_loss", 2, 6))]
    path = write_episodes(tmp_path / "r.parquet", eps, {"env_id": ENV_ID})
    back, _ = read_episodes(path)
    for a, b in zip(eps, back):
        same_arrays(a, b)
        assert (a.outcome, a.params, a.seed, a.failure_step) == (b.outcome, b.params, b.seed, b.failure_step)


def test_damaged_files_give_clear_errors(recorded, tmp_path):
    _, path = recorded
    data = path.read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_rollouts(tmp_path / "cut.parquet")
    flipped = bytearray(data)
    middle = len(flipped) // 3
    flipped[middle:middle + 64] = bytes(b ^ 0xFF for b in flipped[middle:middle + 64])
    (tmp_path / "flip.parquet").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_rollouts(tmp_path / "flip.parquet")
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows - 3), tmp_path / "short.parquet")  # keeps the metadata
    with pytest.raises(ValueError, match="damaged"):
        load_rollouts(tmp_path / "short.parquet")
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "other.parquet")
    with pytest.raises(ValueError, match="not a robogate rollout file"):
        load_rollouts(tmp_path / "other.parquet")
    with pytest.raises(ValueError, match="no recorded episodes at .*missing.parquet: no such file"):
        load_rollouts(tmp_path / "missing.parquet")
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "manifest.json").write_text("{}")
    with pytest.raises(ValueError, match="is a sweep folder, not recorded episodes; .*--from-sweep"):
        load_rollouts(tmp_path / "sweep")


def test_scripted_rollouts_carry_observations_only():
    (r,) = record_rollouts(ENV_ID, ScriptedPolicy(), episodes=1, progress=False)
    assert r.observations.shape == (r.steps, 43) and r.embeddings is None and r.action_chunks is None
    with pytest.raises(ValueError, match=r"has no sample_chunks\(obs, n\), so it cannot record 8 action chunks"):
        record_rollouts(ENV_ID, ScriptedPolicy(), episodes=1, n_chunks=8)


def test_chunks_are_sampled_only_when_asked_for_and_the_default_monitor_needs_none(flow):
    from robogate.monitor import scores
    from robogate.monitor.settings import DEFAULT_SCORES

    rollouts = record_rollouts(ENV_ID, flow, episodes=2, params={}, seed=0, progress=False)
    assert all(r.action_chunks is None and r.embeddings is not None for r in rollouts)
    assert set(DEFAULT_SCORES) <= set(scores.usable(rollouts))


@pytest.mark.slow
def test_rollouts_record_on_an_open_pool_and_leave_it_open(local_pool):
    first = record_rollouts(ENV_ID, ScriptedPolicy(), episodes=2, seed=1, executor=local_pool, progress=False)
    again = record_rollouts(ENV_ID, ScriptedPolicy(), episodes=2, seed=1, executor=local_pool, progress=False)
    assert [r.outcome for r in first] == [r.outcome for r in again] and len(first) == 2


class Raising(ScriptedPolicy):
    def act(self, obs):
        raise RuntimeError("gripper driver offline")


def test_a_policy_that_raises_is_a_broken_harness_not_a_failure(tmp_path):
    with pytest.raises(ValueError, match="2 of 2 rollouts ended in error .* first: the policy raised RuntimeError: gripper driver"):
        record_rollouts(ENV_ID, Raising(), episodes=2, progress=False, out=tmp_path)
    assert not (tmp_path / ROLLOUTS_FILE).exists()


def test_scenarios(flow):
    rows = rollout_scenarios(5, None, seed=2, envelope=flow.envelope)
    assert len(rows) == 5 and all(flow.envelope.contains(p) for p, _ in rows)
    assert [s for _, s in rows] == [trial_seed(2, i) for i in range(5)]
    sweep = pd.DataFrame([{**p, "seed": 100 + i, "success": False} for i, (p, _) in enumerate(rows)])
    replay = rollout_scenarios(3, sweep)
    assert [s for _, s in replay] == [100, 101, 102] and replay[1][0] == rows[1][0]
    with pytest.raises(ValueError, match="fewer than episodes"):
        rollout_scenarios(9, sweep)
    with pytest.raises(ValueError, match="friction"):
        rollout_scenarios(2, {"friction": 9.0})


class ReleaseMidway(ScriptedPolicy):
    """The scripted controller, opening its hand on the way to the target."""

    def act(self, obs):
        action = super().act(obs)
        self.step = getattr(self, "step", -1) + 1
        if self.phase == "transport" and self.release_step is None:
            self.release_step = self.step
        if self.release_step is not None:
            action[4] = 1.0
        return action

    def reset(self):
        super().reset()
        self.step, self.release_step = -1, None


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_failure_step_is_the_failure_event(seed):
    import gymnasium as gym

    env = gym.make(ENV_ID)
    try:
        _, ok = record_episode(env, ScriptedPolicy(), {}, seed)
        assert ok.success and ok.failure_step is None
        _, crash = record_episode(env, ScriptedPolicy(), {"size": 0.12}, seed)  # too wide: presses on it
        assert crash.outcome == "collision" and crash.failure_step == crash.steps - 1
        policy = ReleaseMidway()
        record, dropped = record_episode(env, policy, {}, seed)
        assert record["outcome"] == dropped.outcome and record["steps"] == dropped.steps
    finally:
        env.close()
    assert dropped.outcome == "placement_error"
    # The event is the release, named only once the object has come to rest steps later.
    assert policy.release_step <= dropped.failure_step <= policy.release_step + 2
    assert dropped.failure_step < dropped.steps - 1  # before the step that named the outcome


class Idle(ScriptedPolicy):
    """Lowers the open gripper beside the object for ``lower`` steps, then keeps still; closes it at step
    ``close`` when given. Either way nothing is ever lifted."""

    def __init__(self, close: int | None = None, lower: int = 5) -> None:
        super().__init__()
        self.close, self.lower = close, lower

    def reset(self):
        super().reset()
        self.t = -1

    def act(self, obs):
        self.t += 1
        closed = self.close is not None and self.t >= self.close
        return np.array([0.0, 0.0, -1.0 if self.t < self.lower else 0.0, 0.0, -1.0 if closed else 1.0],
                        dtype=np.float32)


def test_a_missed_grasp_fails_when_it_closed_and_a_timeout_has_no_event():
    import gymnasium as gym

    env = gym.make(ENV_ID)
    try:
        _, missed = record_episode(env, Idle(close=12, lower=10), {}, 0)  # shuts on nothing, low, waits out the clock
        _, idle = record_episode(env, Idle(), {}, 0)  # never closes: nothing happens
    finally:
        env.close()
    assert missed.outcome == "grasp_miss" and missed.steps == 120  # named at the time limit
    assert 12 <= missed.failure_step <= 15  # the step the fingers met, not the last one
    assert missed.observations[missed.failure_step + 1, 5] < 0.004 < missed.observations[missed.failure_step, 5]
    assert idle.outcome == "timeout" and idle.failure_step is None


@pytest.mark.slow
def test_parallel_recording_matches_serial():
    cases = [({"size": 0.04 + 0.01 * i}, trial_seed(9, i)) for i in range(3)]
    capture = Capture(embed=True, n_chunks=4)
    serial = record_episodes(ENV_ID, "flow", cases, capture=capture, workers=1)
    parallel = record_episodes(ENV_ID, "flow", cases, capture=capture, workers=2)
    for a, b in zip(serial, parallel):
        same_arrays(a, b)
        assert (a.outcome, a.failure_step, a.seed) == (b.outcome, b.failure_step, b.seed)


SCRIPT = """
import sys
import numpy as np
from robogate.monitor import record_rollouts
from robogate.policies import FlowPolicy

if __name__ == "__main__":
    flow = FlowPolicy.pretrained("robogate/PickPlace-Panda-v0")
    rollouts = record_rollouts("robogate/PickPlace-Panda-v0", flow, episodes=3, seed=4, n_chunks=2,
                               workers=int(sys.argv[2]), progress=False)
    np.savez(sys.argv[1], *[r.action_chunks for r in rollouts], outcomes=[r.outcome for r in rollouts])
"""


@pytest.mark.slow
def test_a_policy_object_records_with_two_workers_from_a_script(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "record.py"
    script.write_text(SCRIPT)
    for workers in (1, 2):
        subprocess.run([sys.executable, str(script), str(tmp_path / f"w{workers}.npz"), str(workers)], check=True,
                       capture_output=True, timeout=600)
    one, two = np.load(tmp_path / "w1.npz"), np.load(tmp_path / "w2.npz")
    assert list(one["outcomes"]) == list(two["outcomes"])
    for key in ("arr_0", "arr_1", "arr_2"):
        np.testing.assert_array_equal(one[key], two[key])


def test_cli_records_rollouts(tmp_path, capsys):
    code = main(["rollouts", "record", "--policy", "flow", "--env", ENV_ID, "--episodes", "1", "--chunks", "2",
                 "--workers", "1", "--params", '{"mass": 0.3}', "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    assert "1 rollouts" in capsys.readouterr().out
    (r,) = load_rollouts(tmp_path)
    assert r.params["mass"] == 0.3 and r.action_chunks.shape[1] == 2
    assert main(["rollouts", "record", "--env", ENV_ID, "--episodes", "1", "--params", "{bad",
                 "--out", str(tmp_path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["rollouts", "record", "--env", ENV_ID, "--episodes", "1", "--failures-only",
                 "--out", str(tmp_path)]) == 2


@pytest.mark.slow
def test_cli_shifted_and_sweep_replay(tmp_path, capsys):
    from robogate.sweep.run import run_sweep
    from robogate.sweep.stored import load_sweep
    from robogate.training.demonstrations import TRAINING_ENVELOPE

    assert main(["rollouts", "record", "--env", ENV_ID, "--episodes", "2", "--chunks", "2", "--shifted",
                 "--workers", "1", "--out", str(tmp_path / "shifted"), "--no-progress"]) == 0
    assert not any(TRAINING_ENVELOPE.contains(r.params) for r in load_rollouts(tmp_path / "shifted"))
    # Replaying a flow sweep reproduces its outcomes: same scenarios, same seeds, same sampling.
    run_sweep(ENV_ID, "flow", tmp_path / "sweep", n_lhs=3, n_boundary=0, seed=2, workers=1, progress=False)
    sweep = load_sweep(tmp_path / "sweep").sort_values("id")
    assert main(["rollouts", "record", "--env", ENV_ID, "--episodes", "3", "--chunks", "2", "--from-sweep",
                 str(tmp_path / "sweep"), "--workers", "1", "--out", str(tmp_path / "replay"), "--no-progress"]) == 0
    episodes, _ = read_episodes(tmp_path / "replay")
    assert [e.outcome for e in episodes] == list(sweep["outcome"])
    assert [e.seed for e in episodes] == list(sweep["seed"])
    capsys.readouterr()
    assert main(["rollouts", "record", "--env", ENV_ID, "--episodes", "9", "--from-sweep", str(tmp_path / "sweep"),
                 "--out", str(tmp_path / "x")]) == 2
    assert "fewer than the 9 episodes asked" in capsys.readouterr().err


def test_training_rows_balance_the_outcomes_boundary_first_and_never_draw_errors():
    from robogate.monitor.recording import training_rows

    # 30 failures (10 of them at the boundary), 8 successes (4 at the boundary), 5 errored rows.
    stage = [1] * 20 + [2] * 10 + [1] * 4 + [2] * 4 + [1] * 5
    success = [False] * 30 + [True] * 8 + [False] * 5
    outcome = ["collision"] * 30 + ["success"] * 8 + ["error"] * 5
    sweep = pd.DataFrame({"seed": range(43), "stage": stage, "success": success, "outcome": outcome})
    rows = training_rows(sweep, 12, seed=3)
    assert len(rows) == 12 and (rows["outcome"] != "error").all()
    assert (~rows["success"]).sum() == 6 and rows["success"].sum() == 6
    assert (rows[~rows["success"]]["stage"] == 2).all()  # 10 boundary failures: all six drawn from them
    assert (rows[rows["success"]]["stage"].iloc[:4] == 2).all()  # then the 4 boundary successes first
    more = training_rows(sweep, 30, seed=3)  # only 8 successes: failures fill the rest
    assert more["success"].sum() == 8 and len(more) == 30
    assert training_rows(sweep, 12, seed=3).equals(rows)
    with pytest.raises(ValueError, match="load it with robogate.load_sweep"):
        training_rows(sweep.drop(columns="stage"), 4)
