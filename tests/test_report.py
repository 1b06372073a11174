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

from robogate.cli import main
from robogate.report import write_report
from robogate.space import Categorical, Continuous, Integer, ParameterSpace
from robogate.store import SweepStore
from robogate.sweep_config import SweepConfig

SPACE = ParameterSpace([Continuous("friction", 0.05, 1.2, log=True), Continuous("mass", 0.05, 2.0, log=True),
                        Integer("obstacles", 0, 2), Categorical("shape", ["box", "sphere"])])


def make_sweep(path, seed=0, env_id="robogate/PickPlace-Panda-v0", band=(0.2, 0.6), space=SPACE):
    """A small stored sweep: slippery heavy objects fail (grasp_miss), obstacles sometimes collide."""
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame(space.from_unit(rng.random((300, len(space)))))
    logit = 2.5 * np.log(rows["mass"] / rows["friction"]) - 1.0 + 0.8 * rows.get("obstacles", 0)
    failed = rng.random(len(rows)) < 1 / (1 + np.exp(-logit))
    rows["success"] = ~failed
    rows["outcome"] = np.where(~failed, "success", np.where(rng.random(len(rows)) < 0.8, "grasp_miss", "collision"))
    rows["stage"] = np.where(np.arange(len(rows)) < 220, 1, 2)
    rows["id"] = np.arange(len(rows))
    rows["seed"] = rng.integers(2**32, size=len(rows))
    config = SweepConfig(env_id=env_id, policy="scripted", seed=seed, space=space, n_lhs=220, n_boundary=80,
                         band=tuple(band), batch_size=20, n_candidates=1000)
    store = SweepStore.create(path, {
        **config.to_manifest(), "lhs_discrepancy": 0.01, "complete": True,
        "versions": {"robogate": "0.1.0", "pybullet": "3.2.7", "numpy": np.__version__},
    })
    store.append(rows.to_dict("records"))
    return path


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


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One sweep's report, with a gate verdict (written once: fitting the risk models takes seconds)."""
    sweep = make_sweep(tmp_path_factory.mktemp("report") / "panda")
    path = write_report(sweep, envelope=["friction=0.5:1.2", "mass=0.05:0.1"], max_failure_rate=0.3)
    return sweep, path


def test_html_parses_and_every_figure_decodes(report):
    sweep, path = report
    assert path == sweep / "report" / "report.html"
    page, text = parse(path)
    sizes = decode_images(page)
    assert len(sizes) == 4 and all(w > 400 and h > 150 for w, h in sizes)
    for heading in ("Summary", "Deployment gate", "Danger zones", "Success across each parameter", "Risk map",
                    "Boundary equations", "Coefficients", "How well the map predicts", "Provenance"):
        assert heading in text


def test_report_content_comes_from_the_sweep(report):
    sweep, path = report
    page, text = parse(path)
    assert "| Panda | 300 |" in (sweep / "report" / "report.md").read_text()
    assert "grasp_miss" in text and "sweep seed" in text
    assert "stage-2 target 0.2–0.6" in text  # the band is the sweep's own, read from its manifest
    assert "Envelope: friction 0.5–1.2, mass 0.05–0.1" in text
    assert any(f"Panda: {v}" in text for v in ("PASS", "FAIL", "INCONCLUSIVE"))
    markdown = (sweep / "report" / "report.md").read_text()
    for name in ("outcomes", "success_by_parameter", "risk_map", "evaluation"):
        assert f"({name}.png)" in markdown and (sweep / "report" / f"{name}.png").stat().st_size > 5000
    assert "friction* =" in markdown or "mass* =" in markdown


@pytest.mark.slow
def test_comparison_marks_universal_zones(tmp_path):
    dirs = [make_sweep(tmp_path / "a", 0, "robogate/PickPlace-Panda-v0"),
            make_sweep(tmp_path / "b", 1, "robogate/PickPlace-UR5e-v0")]
    assert main(["report", *map(str, dirs), "--out", str(tmp_path / "both")]) == 0
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


def test_the_library_leaves_pyplot_alone():
    code = ("import sys, matplotlib, robogate.report; "
            "assert 'matplotlib.pyplot' not in sys.modules; print(matplotlib.get_backend())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
