"""The one Envelope: its two modes for parameters left out, its one text syntax, JSON and checkpoints."""

import json

import numpy as np
import pandas as pd
import pytest

from robogate.envs.scene import default_space
from robogate.scenarios.envelope import Envelope
from robogate.training.demonstrations import TRAINING_ENVELOPE

SPACE = default_space()

# Recorded with robogate 0.1.0 (demos.sample_envelope and the gate's Envelope.sample): the same
# inputs must keep giving the same scenes, or recorded demonstrations and gate runs change meaning.
TRAINING_SAMPLE_0 = [
    {"friction": 0.7256032214034158, "mass": 0.38221897495913987, "com_offset": 0.022372047057703178,
     "size": 0.06553988855628898, "ik_noise": 0.002803542457093381, "obstacles": 0, "shape": "sphere",
     "placement": "left_near"},
    {"friction": 0.7502286355006813, "mass": 0.07601461846076406, "com_offset": 0.08735338552198081,
     "size": 0.03880575596011885, "ik_noise": 0.0019386507490014666, "obstacles": 0, "shape": "sphere",
     "placement": "right"},
]
GATE_POINTS_0 = [
    {"friction": 1.1091604970150037, "mass": 0.6040285872514704, "com_offset": 0.3215930394816173,
     "size": 0.05351447706239708, "ik_noise": 0.012670877202574076, "obstacles": 1, "shape": "cylinder",
     "placement": "reach_limit"},
    {"friction": 0.4204449008014037, "mass": 0.14196438496091252, "com_offset": 0.1795355457069613,
     "size": 0.05597562418710582, "ik_noise": 0.007304631703088891, "obstacles": 1, "shape": "cylinder",
     "placement": "center"},
]


def test_sampling_is_pinned_to_the_0_1_0_release():
    assert TRAINING_ENVELOPE.sample(37, seed=0)[:2] == TRAINING_SAMPLE_0
    gate_envelope = Envelope(SPACE, {"friction": (0.3, 1.2), "shape": ["cylinder", "box"], "obstacles": (0, 1)})
    assert gate_envelope.points([np.random.SeedSequence(7, spawn_key=(i, 3)) for i in range(2)]) == GATE_POINTS_0


def test_rest_free_and_rest_nominal_differ_only_in_the_parameters_left_out():
    limits = {"friction": (0.4, 1.2), "shape": ["box", "cylinder"]}
    free, nominal = Envelope(SPACE, limits, rest="free"), Envelope(SPACE, limits, rest="nominal")
    assert free.left_out == nominal.left_out == ["mass", "com_offset", "size", "ik_noise", "obstacles", "placement"]
    assert free.allowed("mass") == (0.05, 2.0) and nominal.allowed("mass") == (0.2, 0.2)
    assert free.allowed("obstacles") == {0, 1, 2, 3, 4} and nominal.allowed("obstacles") == {0}
    heavy = {"friction": 0.5, "mass": 1.5}
    assert free.contains(heavy) and nominal.outside(heavy) == ["mass"]
    assert nominal.contains({"friction": 0.5, "shape": "cylinder"})
    assert free.contains(nominal) and not nominal.contains(free)
    assert free.describe().endswith("; free: mass, com_offset, size, ik_noise, obstacles, placement")
    assert nominal.describe().endswith("; at nominal: mass, com_offset, size, ik_noise, obstacles, placement")
    scenes = nominal.sample(40, seed=3)
    assert all(s["mass"] == 0.2 and s["placement"] == "center" for s in scenes)
    assert {s["shape"] for s in scenes} == {"box", "cylinder"}
    spread = pd.DataFrame(free.sample(200, seed=3))
    assert spread["mass"].max() > 1.0 and spread["placement"].nunique() == 14  # free: full ranges
    table = SPACE.to_frame([heavy, {"friction": 0.5}])
    assert free.mask(table).tolist() == [True, True] and nominal.mask(table).tolist() == [False, True]
    assert Envelope(SPACE, rest="free").describe() == "the whole space"
    assert Envelope(SPACE, rest="nominal").describe() == "the nominal scene"


def test_one_syntax_ranges_values_and_fixed_values():
    env = Envelope.parse(["friction=0.5", "obstacles=0,2", "size=0.03:0.06", "shape=plate"], SPACE, rest="nominal")
    assert env.allowed("friction") == (0.5, 0.5) and env.allowed("obstacles") == {0, 2}
    assert env.allowed("size") == (0.03, 0.06) and env.allowed("shape") == {"plate"}
    assert env.describe_entry("friction") == "friction 0.5" and env.describe_entry("obstacles") == "obstacles in {0, 2}"
    assert {s["obstacles"] for s in env.sample(30, seed=0)} == {0, 2}
    assert Envelope.parse(["obstacles=1:3"], SPACE) == Envelope(SPACE, {"obstacles": [1, 2, 3]})
    assert TRAINING_ENVELOPE.updated(env).allowed("mass") == TRAINING_ENVELOPE.allowed("mass")


@pytest.mark.parametrize("texts, message", [
    (["friction"], "expected NAME=LOW:HIGH or NAME=A,B"),
    (["friction=0.4:x"], "friction takes numbers, got 'x'"),
    (["friction=0.1,0.2"], "friction is continuous and takes a range LOW:HIGH"),
    (["obstacles=1.5"], r"obstacles value 1.5 is outside the space"),
    (["shape=box", "shape=sphere"], "parameter 'shape' is given twice"),
    (["mass=3:4"], r"mass value 3.0 is outside the space \(mass takes a real number in \[0.05, 2\]"),
])
def test_bad_entries_name_the_problem(texts, message):
    with pytest.raises(ValueError, match=message):
        Envelope.parse(texts, SPACE)


def test_unknown_rest_is_refused():
    with pytest.raises(ValueError, match="rest must be 'free' or 'nominal'"):
        Envelope(SPACE, {}, rest="full")


@pytest.mark.parametrize("rest", ["free", "nominal"])
def test_json_round_trip(rest):
    env = Envelope(SPACE, {"friction": (0.1, 0.9), "obstacles": [3, 1], "placement": ["edge", "center"]}, rest=rest)
    back = Envelope.from_json(env.to_json(), SPACE)
    assert back == env and back.rest == rest
    assert back.sample(20, seed=4) == env.sample(20, seed=4)  # the listed order of values survives
    assert json.loads(env.to_json()) == {"rest": rest, "limits": {"friction": [0.1, 0.9], "obstacles": [1, 3],
                                                                  "placement": ["edge", "center"]}}


def test_the_0_1_0_stored_forms_are_read():
    # The gate stored its stage-3 rows' envelope as limits alone, integers as values, the rest free.
    gate_text = json.dumps({"friction": [0.4, 1.2], "obstacles": [0, 3]})
    assert Envelope.from_json(gate_text, SPACE) == Envelope(SPACE, {"friction": (0.4, 1.2), "obstacles": [0, 3]})
    # Demonstrations and checkpoints stored every parameter, integer pairs as ranges, the rest nominal.
    training = {"friction": [0.4, 1.2], "obstacles": [0, 3], "shape": ["box"]}
    read = Envelope.from_dict(training, SPACE)
    assert read.rest == "nominal" and read.allowed("obstacles") == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="not valid JSON"):
        Envelope.from_json("{friction", SPACE)


def test_training_envelope_round_trips_through_a_checkpoint(tmp_path):
    import torch

    from robogate.policies import FlowPolicy
    from robogate.policies.flow import FlowConfig

    envelope = TRAINING_ENVELOPE.updated({"obstacles": (0, 1), "shape": ["plate", "box"]})
    policy = FlowPolicy(FlowConfig(hidden=8, embed_dim=4, depth=1, flow_steps=1), envelope=envelope)
    path = policy.save(tmp_path / "p.pt")
    assert torch.load(path, weights_only=True)["envelope"] == envelope.to_dict()
    loaded = FlowPolicy.load(path).envelope
    assert loaded == envelope and loaded.rest == "nominal"
    assert loaded.sample(10, seed=2) == envelope.sample(10, seed=2)
    shipped = FlowPolicy.pretrained().envelope  # written by 0.1.0, read in its old form
    assert shipped == TRAINING_ENVELOPE and shipped.sample(5, seed=1) == TRAINING_ENVELOPE.sample(5, seed=1)
