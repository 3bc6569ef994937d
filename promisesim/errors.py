"""Exceptions raised by promisesim."""

from __future__ import annotations

import numbers

__all__ = ["ScenarioError", "EngineError"]


class ScenarioError(ValueError):
    """A model or scenario file is invalid.

    The message names the offending element (agent, promise, injection,
    workload) and, for scenario files, where it is in the file.

    Attributes
    ----------
    element : tuple of (str, str) or None
        ``(kind, name)`` of the offending element, for example
        ``("promise", "p3")``, when one element is to blame.
    """

    def __init__(self, message: str, *, element: tuple[str, str] | None = None) -> None:
        super().__init__(message)
        self.element = element


class EngineError(RuntimeError):
    """An engine was asked to run something it does not support."""


def did_you_mean(name: object, known: object) -> str:
    """A hint for a name that is not among ``known`` (an iterable of names): ``"; did you
    mean 'db'?"`` for the closest one, or ``""`` when none is close."""
    import difflib

    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, sorted(str(k) for k in known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _real(value: object) -> bool:
    """Whether ``value`` is a real number and not a truth value (numpy's scalars count)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
