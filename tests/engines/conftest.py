"""Fixtures of the engine comparisons."""

import pytest


@pytest.fixture(autouse=True)
def refusal_passes_run_to_the_end(monkeypatch):
    """The comparisons check the vector engine's passes themselves, so a limited agent's
    refusals settle however slowly, rather than the run being handed to the reference
    engine when they settle a few per pass (``batch._STALLED_MIN``; that handover has
    tests of its own, in ``tests/test_concurrency_cap.py``)."""
    from promisesim.engines.vector import batch
    monkeypatch.setattr(batch, "_STALLED_MIN", float("inf"))
