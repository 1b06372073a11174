"""What the reports show beyond numbers: the outcome mix per parameter bin, the boundary in physical units, the
suggested envelope beside the gate, and failure galleries of replayed episodes (sweep, suite run, comparison)."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import robogate
from robogate.analysis.risk import RiskModel
from robogate.analysis.suggestion import suggest_envelope
from robogate.cli.parser import main
from robogate.reports.comparison import write_comparison_report
from robogate.reports.suite import write_suite_report
from robogate.reports.sweep import _fig_outcomes_by_parameter, _read, _thresholds, write_report
from robogate.suites.comparison import compare
from robogate.suites.run import run_suite
from tests.helpers import ENV_ID
from tests.test_replay import COLLISION, GRASP_MISS, store_episodes
from tests.test_report import SPACE, make_sweep, parse
from tests.test_suggest import sweep_with

TESTS = Path(__file__).resolve().parent
BROKEN = "tests.helpers:OpenGripperPolicy"
TWO = {"name": "two", "version": 1, "seed": 5, "seeds": 2, "categories": {"nominal": {}},
       "scenarios": [{"id": "nominal", "category": "nominal"},
                     {"id": "cylinder", "category": "nominal", "params": {"shape": "cylinder"}}]}


def test_the_outcome_mix_per_bin_stacks_to_each_bins_uniform_rows(tmp_path):
    sweep = _read(make_sweep(tmp_path / "s", n_lhs=200, n_boundary=60))[0]
    fig = _fig_outcomes_by_parameter(sweep)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == SPACE.names
    uniform = sweep.df[sweep.df["stage"] == 1]
    for ax in panels:
        tops = {}
        for bar in ax.patches:
            x = round(bar.get_x() + bar.get_width() / 2, 9)
            tops[x] = tops.get(x, 0.0) + bar.get_height()
        assert np.allclose([t for t in tops.values() if t > 0], 1.0)  # every bin with rows: shares sum to 1
        counts = [int(t.get_text()) for t in ax.texts]
        assert sum(counts) == len(uniform)  # the counts above the bars are the uniform rows, stage 2 left out
    shape = panels[SPACE.names.index("shape")]
    assert [t.get_text() for t in shape.get_xticklabels()] == ["box", "sphere"]
    assert {t.get_text() for t in fig.legends[0].get_texts()} == set(uniform["outcome"])


def test_the_boundary_reads_in_physical_units(tmp_path):
    """The planted logit 2.5 log(mass / friction) - 1 is 0 at friction* = mass / e^0.4, failing below it."""
    df = robogate.load_sweep(make_sweep(tmp_path / "s", n_lhs=1500, n_boundary=0))
    model = RiskModel(space=SPACE, random_state=0).fit(df[SPACE.names], ~df["success"])
    table = _thresholds(model, SPACE, "friction", "mass")
    assert list(table.columns) == ["mass", "friction*", "friction where P(failure) > 0.5"]
    masses = table["mass"].astype(float).to_numpy()
    assert masses[0] == 0.05 and masses[-1] == 2.0 and len(masses) == 5
    for mass, threshold, failing in table.itertuples(index=False):
        planted = float(mass) / np.exp(0.4)
        if threshold == "none in range":  # the lightest never fails; the heaviest fails at any friction
            assert (planted < 0.05 * 1.3 and failing == "nowhere") or (planted > 1.2 / 1.3 and failing == "0.05–1.2")
            continue
        assert float(threshold) == pytest.approx(planted, rel=0.25)
        assert failing == f"0.05–{threshold}"


@pytest.mark.slow
def test_the_report_suggests_an_envelope_beside_the_gate(tmp_path):
    sweep = sweep_with(tmp_path / "clear", 400)
    write_report(sweep, envelope=["friction=0.5:1.2"], max_failure_rate=0.05, gallery=False)
    markdown = (sweep / "report" / "report.md").read_text()
    gate_at, suggestion_at = markdown.index("## Deployment gate"), markdown.index("### Where to deploy")
    assert gate_at < suggestion_at < markdown.index("## Danger zones")
    assert "| friction | 0.348–1.2 | 0.05–1.2 |" in markdown and "| shape | free (full range) |" in markdown
    blocks = markdown.split("```\n")[1::2]
    flags, command = (b for b in blocks if b.startswith(("--envelope", "robogate sweep")))
    assert flags.split() == "--envelope friction=0.348:1.2 \\ --envelope mass=0.05:0.796".split()
    df = robogate.load_sweep(sweep)
    expected = suggest_envelope(df, 0.05).command(sweep, df.attrs["settings"])
    assert command.strip().replace(" \\\n    ", " ") == expected  # the wrapped lines are the command
    assert expected.startswith(f"robogate sweep --env {ENV_ID} --policy scripted --n-lhs 1 --n-boundary 0 --seed 1 ")


@pytest.mark.slow
def test_the_sweep_report_shows_one_reproduced_failure_per_mode(tmp_path):
    scenes = [({}, 0), (GRASP_MISS, 0), (COLLISION, 0), (GRASP_MISS, 1), (COLLISION, 1)]
    sweep = store_episodes(tmp_path / "s", scenes)
    path = write_report(sweep)
    markdown = (sweep / "report" / "report.md").read_text()
    assert "## Failure gallery" in markdown and "(gallery.png)" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith(("| grasp_miss |", "| collision |"))]
    assert [r.split(" | ")[1] for r in rows] == ["experiment 1", "experiment 2"]  # one each, the first by id
    assert f"robogate replay {sweep} --id 1 |" in rows[0] and "friction 0.1, mass 1.5" in rows[0]
    gallery = Image.open(io.BytesIO((sweep / "report" / "gallery.png").read_bytes()))
    assert gallery.size[0] >= 1000 and 400 <= gallery.size[1] <= 500  # two strips
    _, text = parse(path)
    assert "No gallery" not in text and "ended as stored" not in text


@pytest.mark.slow
def test_a_failure_that_no_longer_reproduces_stays_out_of_the_gallery(tmp_path):
    sweep = store_episodes(tmp_path / "s", [({}, 0), (COLLISION, 0)], stored_outcomes=["success", "grip_loss"])
    write_report(sweep)
    markdown = (sweep / "report" / "report.md").read_text()
    assert "grip_loss: none of the 1 episode tried ended as stored (experiment 1 replayed as collision)" in markdown
    assert "(gallery.png)" not in markdown


@pytest.mark.slow
def test_an_env_that_cannot_render_leaves_the_gallery_out_and_says_why(tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(TESTS))
        scenes = [({"friction": 0.2, "surface": "waxed"}, s) for s in range(3)]
        sweep = store_episodes(tmp_path / "s", scenes, env_id="mylab_envs:Slide-v0", policy="mylab_envs:SlidePolicy")
        write_report(sweep)
    markdown = (sweep / "report" / "report.md").read_text()
    assert "> **Caveat:** No gallery: env 'mylab_envs:Slide-v0' cannot render frames" in markdown


@pytest.fixture(scope="module")
def suite_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("galleries")
    scripted = run_suite(ENV_ID, "scripted", TWO, root / "scripted", workers=1, progress=False)
    broken = run_suite(ENV_ID, BROKEN, TWO, root / "broken", workers=1, progress=False)
    write_suite_report(broken)
    return root, scripted, broken


@pytest.mark.slow
def test_the_suite_report_shows_its_failures(suite_runs):
    _, _, broken = suite_runs
    markdown = (broken.path / "report" / "report.md").read_text()
    assert "## Failure gallery" in markdown and "(gallery.png)" in markdown
    outcome = broken.table["outcome"].iloc[0]
    first = broken.table.sort_values("id").iloc[0]
    assert f"| {outcome} | {first['scenario']} episode {first['episode']} |" in markdown


@pytest.mark.slow
def test_the_comparison_report_shows_the_flipped_episodes(suite_runs, capsys):
    root, scripted, broken = suite_runs
    assert main(["compare", str(broken.path), str(scripted.path), "--out", str(root / "cmp")]) in (1, 3)  # 4 pairs
    markdown = (root / "cmp" / "report" / "report.md").read_text()
    gallery = markdown[markdown.index("## Gallery of flipped episodes"):markdown.index("### Every flipped episode")]
    assert "(gallery.png)" in gallery and "| lost: " in gallery and "(candidate) |" in gallery


@pytest.mark.slow
def test_a_policy_run_now_is_found_beside_the_report_or_said_missing(suite_runs, capsys):
    root, scripted, _ = suite_runs
    result = compare(BROKEN, scripted, suite=TWO, out=root / "now", batch_size=4, workers=1, progress=False)
    markdown = (write_comparison_report(result, root / "now" / "report").parent / "report.md").read_text()
    assert "(gallery.png)" in markdown and "No gallery" not in markdown  # read from now/candidate
    elsewhere = (write_comparison_report(result, root / "elsewhere" / "report").parent / "report.md").read_text()
    assert (f"No gallery: the candidate's episodes are not stored where the comparison keeps them "
            f"({root / 'elsewhere' / 'candidate'})") in elsewhere
