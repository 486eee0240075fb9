"""scripts/stn_study.py: cells written atomically and skipped when done, the summary, figures."""

import importlib.util
import json
from pathlib import Path

import pytest

from cnnlab import models

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "stn_study.py"


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("stn_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cells_summary_resume_and_figures(study, tmp_path, capsys):
    out = tmp_path / "study"
    args = ["--data", "digits", "--only", "R", "--epochs", "2",
            "--train-images", "100", "--invariance-images", "20", "--verbose", "0",
            "--out", str(out)]
    assert study.main(args) == 0
    first = capsys.readouterr().out
    cells = {p.stem: json.loads(p.read_text()) for p in (out / "cells").glob("*.json")}
    arms = ["augment", "plain"] + (["st-cnn"] if "st-cnn" in models.available() else [])
    assert sorted(cells) == [f"digits_R_{arm}" for arm in arms]
    for cell in cells.values():
        assert cell["train_images"] == 100 and cell["test_images"] == 360
        assert 0.0 <= cell["test_error"] <= 1.0 and (out / cell["model_file"]).is_file()
    plain = cells["digits_R_plain"]
    table = (out / "stn_study.md").read_text()
    assert f"| digits | plain | {100 * plain['test_error']:.2f} | – | – | – |" in table
    assert "| MNIST (paper) | CNN | 1.2 | 0.8 | 1.5 | 1.4 |" in table
    record = json.loads((out / "stn_study.json").read_text())
    assert len(record["cells"]) == len(arms)
    for name in ("distortions_digits.png", "invariance_digits_R.png"):
        assert (out / name).stat().st_size > 1000
    curves = json.loads((out / "invariance_digits_R.json").read_text())
    assert sorted(curves) == [f"{arm} (trained on R)" for arm in arms]
    if "st-cnn" in models.available():
        assert (out / "st_output_digits_R.png").stat().st_size > 1000
    else:
        assert "digits_R_st-cnn: skipped, the zoo has no 'st-cnn' yet" in first
    # A second invocation skips the finished cells and keeps their numbers.
    assert study.main(args) == 0
    second = capsys.readouterr().out
    assert "digits_R_plain: done already" in second
    assert json.loads((out / "cells" / "digits_R_plain.json").read_text()) == plain


def test_unknown_distortion_is_refused(study, tmp_path):
    with pytest.raises(SystemExit):
        study.main(["--only", "R,Q", "--out", str(tmp_path)])


def test_standin_has_the_documented_shapes(study):
    model = study.standin_plain_cnn((1, 42, 42), 10)
    assert model.num_parameters() == 16 * 26 + 32 * (16 * 25 + 1) + 3200 * 128 + 128 + 1290
