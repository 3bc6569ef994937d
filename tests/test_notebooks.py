"""Each notebook's .ipynb is its jupytext source (notebooks/*.py), cell for cell.

Edit the .py and regenerate with ``jupytext --to ipynb --set-kernel python3 notebooks/NAME.py``.
"""

from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("*.py"))


def test_there_are_notebooks():
    assert len(SOURCES) >= 8


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_matches_its_source(source):
    expected = jupytext.read(source)
    actual = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert [(c.cell_type, c.source) for c in actual.cells] == \
        [(c.cell_type, c.source) for c in expected.cells]
    assert actual.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_opens_with_a_question_and_answers_it(source):
    text = source.read_text()
    assert "**Question.**" in text and "**Answer.**" in text and "assert " in text
