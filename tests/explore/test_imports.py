"""Where the explorer sits (ARCHITECTURE.md): on top, using explain, never the lab or torch;
and the CLI's parser doesn't load the server (``cnnlab --help`` stays quick)."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_server_uses_explain_but_not_the_lab_nor_torch():
    code = ("import json, sys, cnnlab.explore.server\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('cnnlab', 'torch'))))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "cnnlab.explain.probe" in loaded
    assert not {m for m in loaded if m.startswith(("cnnlab.lab", "cnnlab.apps", "torch"))}


def test_the_command_module_imports_the_server_only_inside_the_command():
    tree = ast.parse((REPO / "cnnlab/explore/commands.py").read_text())
    top = {alias.name for node in tree.body if isinstance(node, ast.Import)
           for alias in node.names}
    top |= {node.module for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert not {m for m in top if m.startswith("cnnlab.explore")}, top
