"""Log axes in robogate's figures carry plain numbers, and no more of them than a small panel fits."""

import pytest
from matplotlib.figure import Figure

from robogate._utils.plotting import plain_log_labels


def labels(low: float, high: float) -> list[str]:
    fig = Figure(figsize=(2.4, 2))
    ax = fig.add_subplot()
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    plain_log_labels(ax.xaxis, low, high)
    fig.canvas.draw()
    ticks = [*ax.xaxis.get_majorticklabels(), *ax.xaxis.get_minorticklabels()]
    return sorted({t.get_text() for t in ticks if t.get_text() and low <= t.get_position()[0] <= high}, key=float)


@pytest.mark.parametrize(("low", "high", "expected"), [
    (0.4, 1.2, ["0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1"]),   # under half a decade: every tick
    (0.15, 1.0, ["0.2", "0.3", "0.5", "1"]),                       # the slide env's friction
    (0.05, 2.0, ["0.05", "0.1", "0.2", "0.5", "1", "2"]),          # robogate's mass
])
def test_log_axis_labels_are_plain_numbers_that_fit(low, high, expected):
    assert labels(low, high) == expected


def test_beyond_two_decades_only_powers_of_ten_are_labelled():
    shown = labels(0.001, 10.0)
    assert shown[0] == "0.001" and shown[-1] == "10"
    assert set(shown) <= {"0.001", "0.01", "0.1", "1", "10"}
