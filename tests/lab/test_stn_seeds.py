"""scripts/stn_seeds.py: the study's cells over seeds, as mean ± std per distortion and arm."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def seeds():
    spec = importlib.util.spec_from_file_location("stn_seeds", SCRIPTS / "stn_seeds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.path.remove(str(SCRIPTS))
    return module


def _cell(folder, kind, arm, seed, error, scored_on="test"):
    (folder / "cells").mkdir(parents=True, exist_ok=True)
    record = {"data": "digits", "kind": kind, "arm": arm, "seed": seed,
              "scored_on": scored_on, f"{scored_on}_error": error}
    (folder / "cells" / f"digits_{kind}_{arm}.json").write_text(json.dumps(record))


def test_mean_and_std_over_seeds_with_the_chosen_arm_per_distortion(seeds, tmp_path, capsys):
    folders = []
    for seed, (plain, st, other) in enumerate([(0.10, 0.04, 0.5), (0.12, 0.06, 0.5),
                                               (0.14, 0.05, 0.5)]):
        folder = tmp_path / f"s{seed}"
        _cell(folder, "R", "plain", seed, plain)
        _cell(folder, "R", "st-cnn-rst-warm5", seed, st)
        _cell(folder, "R", "st-cnn", seed, other)             # not the chosen one
        _cell(folder, "P", "plain", seed, 0.3, scored_on="validation")   # left out
        folders.append(str(folder))
    out = tmp_path / "seeds.md"
    assert seeds.main(folders + ["--chosen", "R=st-cnn-rst-warm5", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| digits | plain | 12.00 ± 2.00 (3) | – | – | – |" in text
    assert "| digits | st-cnn (chosen) | 5.00 ± 1.00 (3) | – | – | – |" in text
    assert "50.00" not in text and "30.00" not in text
    assert "- digits R plain: 0: 10.00, 1: 12.00, 2: 14.00" in text
    capsys.readouterr()
    with pytest.raises(SystemExit):
        seeds.main(folders + ["--chosen", "Q=st-cnn"])
    assert "KIND=st-cnn" in capsys.readouterr().err


def test_a_seed_counted_twice_with_different_errors_is_refused(seeds, tmp_path):
    _cell(tmp_path / "a", "R", "plain", 0, 0.1)
    _cell(tmp_path / "b", "R", "plain", 0, 0.2)
    with pytest.raises(SystemExit, match="seed 0"):
        seeds.main([str(tmp_path / "a"), str(tmp_path / "b")])


def test_selection_averages_the_rule_over_seeds(seeds, tmp_path, capsys):
    folders = []
    # arm A wins seed 0 by a little and loses seed 1 by a lot: the average prefers B
    curves = {"st-cnn-warm5": ([0.30] * 10 + [0.05] * 5, [0.40] * 10 + [0.50] * 5),
              "st-cnn-loc0.1-warm5": ([0.30] * 10 + [0.06] * 5, [0.40] * 10 + [0.07] * 5)}
    for seed in (0, 1):
        folder = tmp_path / f"s{seed}"
        (folder / "cells").mkdir(parents=True)
        for arm, by_seed in curves.items():
            record = {"data": "digits", "kind": "RTS", "arm": arm, "seed": seed,
                      "scored_on": "validation", "validation_error": by_seed[seed][-1],
                      "val_curve": by_seed[seed]}
            (folder / "cells" / f"digits_RTS_{arm}.json").write_text(json.dumps(record))
        folders.append(str(folder))
    assert seeds.main(["--selection"] + folders[:1]) == 0
    assert "Chosen for digits RTS over 1 seed(s): **st-cnn-warm5** (5.00 %)" in capsys.readouterr().out
    assert seeds.main(["--selection"] + folders) == 0
    said = capsys.readouterr().out
    assert "Chosen for digits RTS over 2 seed(s): **st-cnn-loc0.1-warm5** (6.50 %)" in said
    assert "| digits | st-cnn-warm5 | – | 27.50 ± 31.82 (2) | – | – |" in said
