"""The sweep report: figures and a Markdown summary whose numbers come from the table."""

import numpy as np
import pandas as pd
import pytest

from robogate.report import success_by_value, success_interval, write_report
from robogate.space import default_space


def fake_sweep(n=300, seed=0):
    """Rows whose success depends on friction, as a sweep's table would look."""
    space = default_space()
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame(space.from_unit(rng.random((n, len(space)))))
    rows["success"] = rows["friction"] > 0.3
    rows["outcome"] = np.where(rows["success"], "success", "grip_loss")
    rows["stage"] = np.where(np.arange(n) < n * 2 // 3, 1, 2)
    return space, rows


def test_success_interval_is_clopper_pearson():
    low, high = success_interval(0, 10)
    assert low == 0.0 and 0.30 < high < 0.31  # exact bound 1 - 0.025 ** (1/10)


def test_success_by_value_separates_a_friction_boundary():
    space, rows = fake_sweep()
    table = success_by_value(rows, space["friction"])
    assert table["n"].sum() == len(rows)
    assert table["success_rate"].iloc[0] == 0.0 and table["success_rate"].iloc[-1] == 1.0
    assert (table["low"] <= table["success_rate"]).all() and (table["success_rate"] <= table["high"]).all()


def test_write_report(tmp_path):
    space, rows = fake_sweep()
    path = write_report(rows, space, tmp_path / "report")
    text = path.read_text()
    assert f"{len(rows)} experiments" in text and "grip_loss" in text
    for figure in ("outcomes.png", "success_by_parameter.png", "pair.png"):
        assert (tmp_path / "report" / figure).stat().st_size > 5000
    with pytest.raises(ValueError, match="outcome"):
        write_report(rows.drop(columns="outcome"), space, tmp_path / "bad")
