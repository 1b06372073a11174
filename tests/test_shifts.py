"""Shift families: one-factor and multi-factor scenes outside an envelope, and the shipped tables."""

import pytest

from robogate.envs.scene import default_space
from robogate.scenarios.envelope import Envelope
from robogate.scenarios.shifts import DEMO_SHIFT, SHIFT_REGIONS, Shift, one_factor_shifts
from robogate.training.demonstrations import TRAINING_ENVELOPE

NAMES = default_space().names


def test_one_factor_shifts_take_the_widest_stretch_beyond_the_envelope():
    shift = one_factor_shifts(TRAINING_ENVELOPE)
    assert list(shift.regions) == NAMES  # the default envelope leaves room on every axis
    assert shift.regions["friction"] == (0.05, 0.4)  # wider, on the log scale, than 1.2-1.2 above it
    assert shift.regions["obstacles"] == [1, 2, 3, 4] and shift.regions["shape"] == ["capsule", "plate"]
    for name, env in shift.envelopes().items():
        assert env.outside(TRAINING_ENVELOPE) == [name]
    scenes = shift.sample(24, seed=3)
    assert scenes == shift.sample(24, seed=3) and not any(TRAINING_ENVELOPE.contains(p) for p in scenes)
    for i, p in enumerate(scenes):  # parameter i mod 8 is the one outside, the rest inside
        assert shift.moved(p) == [NAMES[i % 8]] and shift.contains(p)
    full = Envelope(default_space(), rest="free")
    with pytest.raises(ValueError, match="whole space"):
        one_factor_shifts(full)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multi_factor_family_moves_one_or_two_parameters_into_their_regions(seed):
    family = Shift(TRAINING_ENVELOPE, SHIFT_REGIONS, factors=(1, 2), name="monitor")
    scenes = family.sample(60, seed)
    moved = [family.moved(s) for s in scenes]
    assert all(1 <= len(m) <= 2 for m in moved) and {len(m) for m in moved} == {1, 2}
    assert all(family.contains(s) for s in scenes) and not any(TRAINING_ENVELOPE.contains(s) for s in scenes)
    assert len({n for m in moved for n in m}) == len(SHIFT_REGIONS)
    one = Shift(TRAINING_ENVELOPE, SHIFT_REGIONS, factors=1)
    assert not any(one.contains(s) for s, m in zip(scenes, moved) if len(m) == 2)


def test_named_families_split_the_regions():
    benign = Shift(TRAINING_ENVELOPE, {k: SHIFT_REGIONS[k] for k in ("friction", "mass")}, factors=(1, 2), name="benign")
    failing = Shift(TRAINING_ENVELOPE, {"placement": SHIFT_REGIONS["placement"]}, name="failing")
    assert all(set(benign.moved(s)) <= {"friction", "mass"} for s in benign.sample(20, 0))
    assert all(failing.moved(s) == ["placement"] for s in failing.sample(20, 0))
    assert not benign.contains(failing.sample(1, 0)[0])
    assert benign.describe().startswith("benign: 1 to 2 of [friction 0.12–0.35; mass 0.6–1.6] moved out of")


def test_the_demo_scene_is_a_scene_of_the_monitor_family():
    family = Shift(TRAINING_ENVELOPE, SHIFT_REGIONS, factors=(1, 2))
    assert family.contains(DEMO_SHIFT) and family.moved(DEMO_SHIFT) == ["placement"]


@pytest.mark.parametrize("regions, factors, message", [
    ({}, 1, "at least one region"),
    ({"friction": (0.3, 0.6)}, 1, "the friction region friction 0.3–0.6 overlaps the envelope \\(friction 0.4–1.2\\)"),
    ({"shape": ["box", "plate"]}, 1, "overlaps the envelope"),
    ({"mass": (0.6, 1.6)}, 2, r"factors must lie in 1..1"),
])
def test_bad_families_are_refused(regions, factors, message):
    with pytest.raises(ValueError, match=message):
        Shift(TRAINING_ENVELOPE, regions, factors=factors)
