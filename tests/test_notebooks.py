"""The example notebooks run, cell by cell, in a real Jupyter kernel: they cannot rot.

Each notebook is executed by nbclient in a process of its own (the kernel's sockets and
Jupyter's notices stay out of this test process, which turns every warning into an error),
and the executed notebook is read back and checked here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "docs" / "examples").glob("*.ipynb"))
RUNNER = """
import sys
import nbformat
from jupyter_client import KernelManager
from nbclient import NotebookClient

source, target, folder = sys.argv[1:]
notebook = nbformat.read(source, as_version=4)
# Local sockets, not a TCP port (which the kernel would warn is unencrypted).
manager = KernelManager(kernel_name="python3", transport="ipc", ip=folder + "/kernel")
NotebookClient(notebook, km=manager, timeout=300, resources={"metadata": {"path": folder}}).execute()
nbformat.write(notebook, target)
"""


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    import nbformat

    executed = tmp_path / path.name
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the notebook's inline
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(path), str(executed), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-4000:]
    notebook = nbformat.read(executed, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(cell.get("execution_count") for cell in code)  # every cell ran
    outputs = [o for cell in code for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert not [o for o in outputs if "warning" in str(o.get("text", "")).lower()]
    # The plots are drawn inline (the waterfall is the last cell).
    assert any("image/png" in o.get("data", {}) for o in code[-1].get("outputs", []))
    assert seconds < 240, f"{path.name} took {seconds:.0f} s; keep the example small"
