"""Imports run downward only (ARCHITECTURE.md): each check runs in a fresh interpreter."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def modules_after_import(statement: str) -> set[str]:
    """The cnnlab modules loaded by running ``statement`` in a fresh interpreter."""
    code = (f"import json, sys\n{statement}\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('cnnlab'))))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("importer, forbidden", [
    ("cnnlab.callbacks", ["cnnlab.training"]),
    ("cnnlab.checkpoint", ["cnnlab.training", "cnnlab.callbacks"]),
    ("cnnlab.ops", ["cnnlab.nn"]),
    ("cnnlab.nn", ["cnnlab.training", "cnnlab.io", "cnnlab.data"]),
    ("cnnlab.io", ["cnnlab.training"]),
    ("cnnlab.optim", ["cnnlab.training", "cnnlab.nn"]),
    ("cnnlab.progress", ["cnnlab.training", "cnnlab.nn"]),
    ("cnnlab.training", ["cnnlab.explain", "cnnlab.lab"]),
    ("cnnlab.runs", ["cnnlab.explain", "cnnlab.lab"]),
])
def test_a_lower_layer_does_not_import_a_higher_one(importer, forbidden):
    loaded = modules_after_import(f"import {importer}")
    assert importer in loaded
    assert not loaded & set(forbidden), f"{importer} imported {sorted(loaded & set(forbidden))}"


def test_the_stack_imports_without_a_cycle():
    loaded = modules_after_import("import cnnlab.ops, cnnlab.nn, cnnlab.training")
    assert {"cnnlab.ops", "cnnlab.nn", "cnnlab.training"} <= loaded


def test_training_no_longer_re_exports_checkpoint_names():
    from cnnlab import training

    for name in ("CHECKPOINT_FORMAT", "load_checkpoint", "model_from_checkpoint", "save_checkpoint"):
        assert not hasattr(training, name), f"import {name} from cnnlab.checkpoint"
