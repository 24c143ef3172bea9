"""The example notebook (examples/notebooks/rhonegletscher.ipynb: raw files -> open_das quick
look -> das -> open_cube -> Lexcube and view) runs end to end in a kernel of this venv."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "notebooks" / "rhonegletscher.ipynb"


def test_the_rhonegletscher_notebook_runs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CRYOCUBE_OUT", str(tmp_path / "out"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "25 Hz:" in outputs and "levels" in outputs, outputs
    assert (tmp_path / "out" / "rhone.zarr" / ".zmetadata").is_file()
