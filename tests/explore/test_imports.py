"""Where the explorer sits (ARCHITECTURE.md): on top, using explain; loaded by the CLI only
when the command runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def loaded_after(statement: str) -> set[str]:
    code = (f"import json, sys\n{statement}\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('cnnlab', 'torch'))))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_server_uses_explain_but_not_the_lab_nor_torch():
    loaded = loaded_after("import cnnlab.explore.server")
    assert "cnnlab.explain.probe" in loaded
    assert not {m for m in loaded if m.startswith(("cnnlab.lab", "cnnlab.apps", "torch"))}


def test_the_cli_loads_the_server_only_when_explore_runs():
    loaded = loaded_after("import cnnlab.cli; cnnlab.cli.build_parser()")
    assert "cnnlab.explore.commands" in loaded
    assert not {"cnnlab.explore.server", "cnnlab.explore.compute"} & loaded
