"""Scenario suites as versioned data: the shipped robogate-68, fixed scenes and seeds, clear errors on bad files."""

import json

import pytest

from robogate.envs.scene import default_space
from robogate.scenarios.envelope import Envelope
from robogate.suites.suite import load_suite, suite_names

TINY = {
    "name": "tiny", "version": 2, "seed": 3, "seeds": 2,
    "categories": {"nominal": {"target": [0.95, 1.0]}, "hard": {}},
    "scenarios": [
        {"id": "nominal", "category": "nominal"},
        {"id": "slippery-heavy", "category": "hard", "params": {"friction": 0.1, "mass": 1.5}, "seeds": 3},
        {"id": "light", "category": "nominal", "envelope": {"mass": "0.05:0.3", "shape": "box,cylinder"}},
    ],
}


def test_robogate_68_follows_robogates_categories_and_counts():
    assert "robogate-68" in suite_names()
    suite = load_suite("robogate-68")
    assert suite.label == "robogate-68@1" and len(suite.scenarios) == 68
    counts = {c: sum(s.category == c for s in suite.scenarios) for c in suite.categories}
    assert counts == {"nominal": 20, "edge": 15, "adversarial": 10, "domain_randomization": 23}
    targets = {c: suite.categories[c].target for c in counts}
    assert targets == {"nominal": (0.95, 1.0), "edge": (0.7, 0.85), "adversarial": (0.4, 0.6),
                       "domain_randomization": (0.85, 0.95)}
    episodes = suite.episodes()
    assert len(episodes) == 680 and [e.index for e in episodes] == list(range(680))
    assert len({(e.params["friction"], e.seed) for e in episodes}) == 680  # no two episodes the same
    assert all(s.envelope is not None for s in suite.scenarios if s.category == "domain_randomization")
    assert sorted(suite.run_order()) == list(range(680)) and suite.run_order() != list(range(680))


def test_scenes_and_seeds_are_fixed_by_the_file():
    suite = load_suite(TINY)
    again = load_suite(json.loads(json.dumps(TINY)))
    assert [(e.params, e.seed) for e in suite.episodes()] == [(e.params, e.seed) for e in again.episodes()]
    assert suite.digest == again.digest and suite.run_order() == again.run_order()
    light = [e for e in suite.episodes() if e.scenario == "light"]
    envelope = Envelope(default_space(), {"mass": (0.05, 0.3), "shape": ["box", "cylinder"]}, rest="nominal")
    assert all(envelope.contains(e.params) for e in light) and len({e.params["mass"] for e in light}) == 2
    assert [e.episode for e in suite.episodes() if e.scenario == "slippery-heavy"] == [0, 1, 2]
    # another scenario added in front changes no existing scene or seed; another seed changes them all
    grown = load_suite({**TINY, "scenarios": [{"id": "extra", "category": "hard"}, *TINY["scenarios"]]})
    old = {(e.scenario, e.episode): (e.params, e.seed) for e in suite.episodes()}
    assert all(old[(e.scenario, e.episode)] == (e.params, e.seed) for e in grown.episodes() if e.scenario != "extra")
    reseeded = load_suite({**TINY, "seed": 4})
    assert not {e.seed for e in reseeded.episodes()} & {e.seed for e in suite.episodes()}
    assert reseeded.digest != suite.digest


def test_round_trip_through_a_file(tmp_path):
    suite = load_suite(TINY)
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(suite.to_dict()))
    assert load_suite(path).digest == suite.digest
    toml = tmp_path / "tiny.toml"
    toml.write_text('name = "tiny"\nversion = 2\nseed = 3\nseeds = 2\n'
                    '[categories.nominal]\ntarget = [0.95, 1.0]\n[categories.hard]\n'
                    '[[scenarios]]\nid = "nominal"\ncategory = "nominal"\n'
                    '[[scenarios]]\nid = "slippery-heavy"\ncategory = "hard"\nparams = { friction = 0.1, mass = 1.5 }\n'
                    'seeds = 3\n'
                    '[[scenarios]]\nid = "light"\ncategory = "nominal"\n'
                    'envelope = { mass = "0.05:0.3", shape = "box,cylinder" }\n')
    assert load_suite(toml).digest == suite.digest


def scenario(**fields):
    return {**TINY, "scenarios": [{"id": "s1", "category": "hard", **fields}]}


@pytest.mark.parametrize("data, message", [
    (scenario(params={"frction": 0.2}), r"scenario 's1': field 'params': unknown parameter\(s\) \['frction'\]"),
    (scenario(params={"mass": 5.0}), r"scenario 's1': field 'params': parameter 'mass': value 5.0 is out of range"),
    (scenario(envelope={"size": "0.2:0.3"}), r"scenario 's1': field 'envelope': envelope: size value 0.2 is outside"),
    (scenario(envelope={"shape": "cube"}), r"scenario 's1': field 'envelope': envelope: unknown shape 'cube'"),
    (scenario(seeds=0), r"scenario 's1': field 'seeds' must be a positive integer, got 0"),
    (scenario(category="hardest"), r"scenario 's1': field 'category': unknown category 'hardest'"),
    (scenario(colour="red"), r"scenario 's1': unknown field\(s\) \['colour'\]"),
    (scenario(params={}, envelope={"mass": "0.1:0.2"}), r"scenario 's1': give either 'params'"),
    (scenario(rest="free"), r"scenario 's1': field 'rest' needs an 'envelope'"),
    (scenario(envelope={"mass": "0.1:0.2"}, rest="full"), r"field 'rest' must be 'nominal' or 'free'"),
    ({**TINY, "scenarios": [TINY["scenarios"][0], TINY["scenarios"][0]]}, r"scenario 'nominal': field 'id' is used twice"),
    ({**TINY, "scenarios": [{"category": "hard"}]}, r"scenario 1: field 'id' must be a non-empty string"),
    ({**TINY, "version": "one"}, r"field 'version' must be a positive integer"),
    ({**TINY, "categories": {"hard": {"target": [0.9, 0.2]}}}, r"category 'hard': field 'target' must be \[low, high\]"),
    ({**TINY, "scenarios": []}, r"field 'scenarios' must be a non-empty list"),
])
def test_a_bad_suite_names_the_scenario_and_the_field(data, message):
    with pytest.raises(ValueError, match=message):
        load_suite(data)


def test_unknown_suites_and_unreadable_files(tmp_path):
    with pytest.raises(ValueError, match=r"unknown suite 'robogate-86'; shipped suites: robogate-68"):
        load_suite("robogate-86")
    with pytest.raises(ValueError, match="no suite file at"):
        load_suite(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\n[[scenarios]\n')
    with pytest.raises(ValueError, match="suite broken.toml: not valid TOML"):
        load_suite(broken)
    other = tmp_path / "suite.yaml"
    other.write_text("name: x")
    with pytest.raises(ValueError, match="expected a .toml or .json file"):
        load_suite(other)
