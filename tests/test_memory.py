"""The malloc tuning (cnnlab._memory) is opt-in: import leaves it alone, fit switches it on.

mallopt has no getter, so each check reads the module's own record of what it applied, in a
fresh interpreter (the setting is process-wide and cannot be undone).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GLIBC = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION") is not None

FIT = """
import numpy as np
from cnnlab import nn
from cnnlab.training import fit
model = nn.Sequential(nn.Flatten(), nn.Dense(3), seed=0).build((1, 2, 2))
x = np.zeros((4, 1, 2, 2), np.float32); y = np.array([0, 1, 2, 0])
fit(model, (x, y), epochs=1, batch_size=2, verbose=0{options})
"""


def kept_after(code: str, environment: dict | None = None) -> bool:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("CNNLAB_KEEP_FREED_MEMORY", None)
    env.update(environment or {})
    code += "\nfrom cnnlab._memory import freed_memory_kept\nprint(freed_memory_kept())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return {"True": True, "False": False}[result.stdout.strip().splitlines()[-1]]


def test_importing_cnnlab_leaves_malloc_alone():
    assert kept_after("import cnnlab, cnnlab.training, cnnlab.nn") is False


@pytest.mark.skipif(not GLIBC, reason="mallopt exists only in glibc")
def test_fit_switches_it_on():
    assert kept_after(FIT.format(options="")) is True


def test_fit_argument_switches_it_off():
    assert kept_after(FIT.format(options=", keep_freed_memory=False")) is False


@pytest.mark.parametrize("value", ["0", "false", "off"])
def test_environment_variable_switches_it_off(value):
    assert kept_after(FIT.format(options=""), {"CNNLAB_KEEP_FREED_MEMORY": value}) is False


@pytest.mark.skipif(not GLIBC, reason="mallopt exists only in glibc")
def test_explicit_call_applies_it_once_and_reports_it():
    code = ("import cnnlab\nassert cnnlab.keep_freed_memory() is True\n"
            "assert cnnlab.keep_freed_memory() is True\nassert cnnlab.keep_freed_memory(False) is True")
    assert kept_after(code) is True
