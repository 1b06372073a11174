"""The report: Markdown and a self-contained HTML page whose figures all decode, for one sweep or several."""

import base64
import io
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import robogate
from robogate.analysis.gating import evidence
from robogate.cli.parser import main
from robogate.datasets.store import SweepStore
from robogate.reports.sweep import write_report
from robogate.scenarios.envelope import Envelope
from robogate.scenarios.space import Categorical, Continuous, Integer, ParameterSpace
from robogate.sweep.config import SweepConfig

SPACE = ParameterSpace([Continuous("friction", 0.05, 1.2, log=True), Continuous("mass", 0.05, 2.0, log=True),
                        Integer("obstacles", 0, 2), Categorical("shape", ["box", "sphere"])])


def slippery_heavy(rows):
    """Slippery heavy objects fail, and obstacles add to it: the logit of P(failure)."""
    return 2.5 * np.log(rows["mass"] / rows["friction"]) - 1.0 + 0.8 * rows.get("obstacles", 0)


def make_sweep(path, seed=0, env_id="robogate/PickPlace-Panda-v0", band=(0.2, 0.6), space=SPACE, n_lhs=220,
               n_boundary=80, logit=slippery_heavy, complete=True):
    """A small stored sweep: slippery heavy objects fail (grasp_miss), obstacles sometimes collide."""
    rng = np.random.default_rng(seed)
    n = n_lhs + n_boundary
    rows = pd.DataFrame(space.from_unit(rng.random((n, len(space)))))
    failed = rng.random(len(rows)) < 1 / (1 + np.exp(-logit(rows)))
    rows["success"] = ~failed
    rows["outcome"] = np.where(~failed, "success", np.where(rng.random(len(rows)) < 0.8, "grasp_miss", "collision"))
    rows["stage"] = np.where(np.arange(len(rows)) < n_lhs, 1, 2)
    rows["id"] = np.arange(len(rows))
    rows["seed"] = rng.integers(2**32, size=len(rows))
    config = SweepConfig(env_id=env_id, policy="scripted", seed=seed, space=space, n_lhs=n_lhs, n_boundary=n_boundary,
                         band=tuple(band), batch_size=20, n_candidates=1000)
    store = SweepStore.create(path, {
        **config.to_manifest(), "lhs_discrepancy": 0.01, "complete": complete,
        "versions": {"robogate": "0.1.0", "pybullet": "3.2.7", "numpy": np.__version__},
    })
    store.append(rows.to_dict("records"))
    return path


def markdown_of(sweep):
    return (sweep / "report" / "report.md").read_text()


class Page(HTMLParser):
    """Collects the images and checks that the block tags open and close in order."""

    BLOCKS = {"html", "head", "body", "main", "table", "thead", "tbody", "tr", "td", "th", "figure", "p", "pre",
              "h1", "h2", "h3", "style", "title"}

    def __init__(self):
        super().__init__()
        self.images, self.open, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))
        elif tag in self.BLOCKS:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if tag in self.BLOCKS:
            assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
            self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(path):
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.open == []
    return page, " ".join(page.text)


def decode_images(page):
    sizes = []
    for img in page.images:
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix), img["src"][:40]  # embedded: the page opens offline
        image = Image.open(io.BytesIO(base64.b64decode(img["src"][len(prefix):], validate=True)))
        image.load()
        sizes.append(image.size)
    return sizes


ENVELOPE = ["friction=0.5:1.2", "mass=0.05:0.1"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One sweep's report, with a gate verdict (written once: fitting the risk models takes seconds)."""
    sweep = make_sweep(tmp_path_factory.mktemp("report") / "panda")
    path = write_report(sweep, envelope=ENVELOPE, max_failure_rate=0.3, gallery=False)  # its outcomes are made up
    return sweep, path


@pytest.mark.slow
def test_html_parses_and_every_figure_decodes(report):
    sweep, path = report
    assert path == sweep / "report" / "report.html"
    page, text = parse(path)
    sizes = decode_images(page)
    assert len(sizes) == 5 and all(w > 400 and h > 150 for w, h in sizes)
    for heading in ("Summary", "Deployment gate", "Danger zones", "Success across each parameter", "Risk map",
                    "Boundary equations", "Coefficients", "How well the map predicts", "Provenance"):
        assert heading in text


@pytest.mark.slow
def test_report_content_comes_from_the_sweep(report):
    sweep, path = report
    page, text = parse(path)
    assert "| Panda | 300 |" in (sweep / "report" / "report.md").read_text()
    assert "grasp_miss" in text and "sweep seed" in text
    assert "stage-2 target 0.2–0.6" in text  # the band is the sweep's own, read from its manifest
    assert "Envelope: friction 0.5–1.2, mass 0.05–0.1" in text
    # the report's verdict is the gate's: its badge, then its sentence (which does not say the verdict again)
    decision = robogate.gate(robogate.load_sweep(sweep), SPACE, Envelope.parse(ENVELOPE, SPACE), max_failure_rate=0.3)
    word, sentence = decision.reason.split(": ", 1)
    assert word == decision.verdict and "the envelope leaves obstacles and shape free over their full range" in sentence
    verdict = next(line for line in markdown_of(sweep).splitlines() if line.startswith("**Panda: "))
    assert verdict == f"**Panda: {decision.verdict.upper()}** — {sentence}"
    assert f"Panda: {decision.verdict.upper()}" in text
    markdown = (sweep / "report" / "report.md").read_text()
    for name in ("outcomes", "success_by_parameter", "risk_map", "evaluation"):
        assert f"({name}.png)" in markdown and (sweep / "report" / f"{name}.png").stat().st_size > 5000
    assert "friction* =" in markdown or "mass* =" in markdown


@pytest.mark.slow
def test_the_report_states_the_held_out_auc_it_draws(report):
    from robogate.reports.sweep import _fit_risk, _read

    sweep, _ = report
    fit = _fit_risk(_read(sweep)[0], 0.3, 0)
    stated = next(line for line in markdown_of(sweep).splitlines() if line.startswith("Held-out AUC: "))
    for name in ("logistic", "boosting"):
        auc, low, high = fit.auc(name, 0)
        assert f"{name} {auc:.3f} [{low:.3f}, {high:.3f}]" in stated


@pytest.mark.slow
def test_comparison_marks_universal_zones(tmp_path):
    dirs = [make_sweep(tmp_path / "a", 0, "robogate/PickPlace-Panda-v0"),
            make_sweep(tmp_path / "b", 1, "robogate/PickPlace-UR5e-v0")]
    assert main(["report", *map(str, dirs), "--out", str(tmp_path / "both"), "--no-gallery"]) == 0
    page, text = parse(tmp_path / "both" / "report.html")
    decode_images(page)
    assert "Panda" in text and "UR5e" in text and "universal" in text
    assert "comparison" in text


def test_sweeps_of_different_spaces_are_not_compared(tmp_path):
    other = ParameterSpace([Continuous("friction", 0.05, 1.2, log=True), Continuous("mass", 0.05, 2.0, log=True)])
    a = make_sweep(tmp_path / "a")
    b = make_sweep(tmp_path / "b", space=other)
    with pytest.raises(ValueError, match="different parameter spaces"):
        write_report([a, b])


@pytest.mark.slow
def test_the_library_leaves_pyplot_alone():
    code = ("import sys, matplotlib, robogate.reports.sweep; "
            "assert 'matplotlib.pyplot' not in sys.modules; print(matplotlib.get_backend())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------- small sweeps and caveats


@pytest.mark.slow
@pytest.mark.parametrize("n_lhs, n_boundary", [(3, 0), (10, 0)])
def test_a_tiny_sweep_gives_a_report_that_says_what_it_cannot_conclude(tmp_path, capsys, n_lhs, n_boundary):
    sweep = make_sweep(tmp_path / "s", n_lhs=n_lhs, n_boundary=n_boundary)
    assert main(["report", str(sweep), "--no-gallery"]) == 0
    page, text = parse(sweep / "report" / "report.html")
    assert len(decode_images(page)) == 3  # outcomes (by stage and per parameter), success per parameter; no map
    assert "too few for a risk map (a logistic map needs at least 10 experiments of each outcome); sweep more" in text
    assert "No region of the space holds the 10 uniform experiments a zone test needs yet" in text
    assert "This report states 2 things it cannot conclude yet; see Danger zones, Risk map." in text
    assert "Boundary equations" not in text and "How well the map predicts" not in text


@pytest.mark.slow
@pytest.mark.parametrize("n_lhs, n_boundary", [(20, 10), (30, 0)])
def test_a_small_sweep_draws_its_map_but_does_not_claim_to_have_tested_it(tmp_path, capsys, n_lhs, n_boundary):
    sweep = make_sweep(tmp_path / "s", n_lhs=n_lhs, n_boundary=n_boundary)
    assert main(["report", str(sweep), "--no-gallery"]) == 0
    page, text = parse(sweep / "report" / "report.html")
    assert len(decode_images(page)) == 4  # outcomes (two), success per parameter, the map; no evaluation
    assert "too few uniform experiments of both outcomes to hold 30% out, so how well the risk map predicts " \
           "is not measured" in text


@pytest.mark.slow
def test_report_of_a_real_smoke_test_sweep(tmp_path, capsys):
    """The first thing anyone runs: a 20 + 10 sweep, then its report."""
    out = tmp_path / "s20"
    assert main(["sweep", "--env", "robogate/PickPlace-Panda-v0", "--n-lhs", "20", "--n-boundary", "10",
                 "--workers", "2", "--no-progress", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    page, text = parse(out / "report" / "report.html")
    decode_images(page)
    assert "No region of the space holds the 10 uniform experiments" in text and "cannot conclude yet" in text


def no_signal(rows):
    """Nine in ten fail wherever they are: friction and mass say nothing."""
    return np.full(len(rows), 2.2)


@pytest.mark.slow
def test_a_boundary_outside_the_map_is_said_and_not_promised(tmp_path):
    sweep = make_sweep(tmp_path / "flat", logit=no_signal, n_lhs=250, n_boundary=0)
    write_report(sweep, gallery=False)
    markdown = markdown_of(sweep)
    assert "boundary lies outside the map" in markdown and "so that panel draws no boundary" in markdown
    assert "no panel holds a P(failure) = 0.5 boundary" in markdown
    assert "the black line is the closed-form boundary" not in markdown


def fit_with(proba, failed):
    from robogate.reports.sweep import _RiskFit

    class Model:
        def predict_proba(self, X):
            return np.column_stack([1 - np.full(len(X), proba), np.full(len(X), proba)])

    fit = _RiskFit(model=Model())
    fit.test_failed = np.asarray(failed, dtype=bool)
    fit.test_proba = {"logistic": np.where(fit.test_failed, proba, proba)}
    return fit


def test_an_auc_interval_that_includes_chance_is_a_caveat(tmp_path):
    from robogate.reports.sweep import _evaluation_caveats, _read

    sweep = _read(make_sweep(tmp_path / "s"))[0]
    failed = np.arange(60) % 2 == 0
    chance = fit_with(0.5, failed)  # ranks nothing: AUC 0.5
    text = _evaluation_caveats([(sweep, chance)], 0.3, 0)
    assert len(text) == 1 and "AUC is 0.500 [0.500, 0.500], an interval that includes 0.5 (chance)" in text[0]
    perfect = fit_with(0.5, failed)
    perfect.test_proba = {"logistic": failed.astype(float)}
    assert _evaluation_caveats([(sweep, perfect)], 0.3, 0) == []


def test_a_map_that_contradicts_the_measured_envelope_is_a_caveat(tmp_path):
    from robogate.reports.sweep import _envelope_caveats, _read

    sweep = _read(make_sweep(tmp_path / "s"))[0]
    envelope = Envelope(SPACE, {"friction": (0.5, 1.2), "mass": (0.05, 0.1)})  # where the planted logit is low
    measured = evidence(sweep.judged, SPACE, envelope)
    assert len(measured) >= 10 and measured["success"].mean() > 0.8
    text = _envelope_caveats([(sweep, fit_with(0.7, []))], envelope)
    assert len(text) == 1 and "the risk map contradicts what was measured inside the envelope" in text[0]
    assert f"for the {len(measured)} uniform experiments there" in text[0]
    assert _envelope_caveats([(sweep, fit_with(measured["success"].eq(False).mean(), []))], envelope) == []


def test_reliability_curves_are_told_apart_and_the_band_shades_only_where_rates_reach_it(tmp_path):
    from robogate.reports.sweep import _fig_evaluation, _fig_success_by_parameter, _read

    sweep = _read(make_sweep(tmp_path / "s"))[0]
    rng = np.random.default_rng(0)
    fit = fit_with(0.5, rng.random(90) < 0.5)
    fit.test_proba = {name: rng.random(90) for name in ("logistic", "boosting")}
    fig = _fig_evaluation([sweep], [fit], seed=0)
    lines = fig.axes[1].get_legend().get_lines()
    styles = {(line.get_color(), line.get_marker(), line.get_linestyle()) for line in lines}
    assert len(lines) == 2 and len(styles) == 2 and len({s[0] for s in styles}) == 2
    low = make_sweep(tmp_path / "low", logit=no_signal, band=(0.3, 0.7))
    panels = _fig_success_by_parameter(_read(low)).axes
    assert not any(ax.patches for ax in panels)  # 10 % success everywhere: no bin lies in 0.3–0.7
    assert any(ax.patches for ax in _fig_success_by_parameter([sweep]).axes)


@pytest.mark.slow
def test_a_report_of_an_unfinished_sweep_says_so(tmp_path):
    sweep = make_sweep(tmp_path / "s", complete=False, n_lhs=8, n_boundary=4)
    write_report(sweep, gallery=False)
    assert (f"the sweep in {sweep} is not finished (12 of 12 experiments); continue it with --resume"
            in markdown_of(sweep))


def test_every_stage_has_its_outcome_mix_gate_runs_included():
    from robogate.reports.sweep import stage_outcome_shares

    df = pd.DataFrame({"stage": [1, 1, 1, 1, 2, 2, 3, 3, 3],
                       "outcome": ["success", "collision", "collision", "grasp_miss", "success", "grip_loss",
                                   "success", "success", "collision"]})
    shares = stage_outcome_shares(df)
    assert shares[1] == {"collision": 0.5, "success": 0.25, "grasp_miss": 0.25}
    assert shares[3] == pytest.approx({"success": 2 / 3, "collision": 1 / 3})  # the gate's own rows
    assert all(sum(s.values()) == pytest.approx(1.0) for s in shares.values())
