"""The folder a sweep writes: a manifest and one Parquet file per finished point and table.

Files are written atomically (a temporary file renamed into place), so an
interrupted sweep leaves only whole points, and a resumed one reads them back.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ScenarioError

_MANIFEST = "sweep.json"
_FORMAT = "promisesim-sweep/1"
_TABLES = ("summary", "promises")


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=True)


def _model_hash(base: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(base).encode("utf-8")).hexdigest()


def _point_file(out: Path, table: str, index: int, n_points: int) -> Path:
    width = max(5, len(str(n_points - 1)))
    return out / table / f"point-{index:0{width}d}.parquet"


def _write_atomic(path: Path, write: Callable[[Any], None]) -> None:
    """Write through a temporary file in the same folder, then rename it into place.

    A kill at any moment leaves either no file or the whole file (``os.replace`` is
    atomic); the temporary name starts with a dot, so Parquet readers skip leftovers.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _import_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ImportError("writing a sweep to a folder needs pyarrow: "
                          "pip install 'promisesim[parquet]'") from None


def _read_manifest(out: Path) -> dict[str, Any] | None:
    path = out / _MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{path}: not a readable sweep manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise ScenarioError(f"{path}: not a promisesim sweep manifest (format {_FORMAT})")
    return manifest


_COMPARED = ("model_sha256", "parameters", "points", "horizon", "replications", "seed", "engine",
             "confidence")


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    for key in _COMPARED:
        if _canonical(old.get(key)) != _canonical(new.get(key)):
            if key in ("points", "parameters", "model_sha256"):
                out.append("the model" if key == "model_sha256" else f"the {key}")
            else:
                out.append(f"{key} ({_canonical(old.get(key))} there, {_canonical(new.get(key))} here)")
    return out


def _prepare_folder(out: Path, manifest: dict[str, Any], resume: bool) -> None:
    """Check ``out`` against the sweep about to run; write the manifest if it is new."""
    existing = _read_manifest(out) if out.is_dir() else None
    if out.exists() and not out.is_dir():
        raise ScenarioError(f"{out}: exists and is not a folder")
    busy = out.is_dir() and any(out.iterdir())
    if existing is None and busy:
        raise ScenarioError(f"{out}: the folder is not empty and holds no sweep ({_MANIFEST}); "
                            "choose a new or empty folder")
    if existing is not None and not resume:
        raise ScenarioError(f"{out}: the folder holds a sweep already; choose a new or empty folder, "
                            "or pass resume=True (--resume) to finish that sweep")
    if existing is not None:
        differences = _differences(existing, manifest)
        if differences:
            raise ScenarioError(f"{out}: holds a different sweep ({'; '.join(differences)} differ); "
                                "resume it with the same settings, or choose another folder")
        for table in _TABLES:  # temporary files of a killed run
            for leftover in (out / table).glob(".point-*.tmp"):
                leftover.unlink(missing_ok=True)
        return
    for table in _TABLES:
        (out / table).mkdir(parents=True, exist_ok=True)
    encoded = (json.dumps(manifest, indent=1, allow_nan=True) + "\n").encode("utf-8")

    def write(handle: Any) -> None:
        handle.write(encoded)

    _write_atomic(out / _MANIFEST, write)


def _read_point(out: Path, index: int, n_points: int, values: dict[str, Any]
                ) -> tuple[pd.DataFrame, pd.DataFrame, str] | None:
    """The tables of finished point ``index`` (None if it has not finished), checked to be
    that point's: its index and parameter values are stored with it."""
    paths = [_point_file(out, table, index, n_points) for table in _TABLES]
    if not all(p.exists() for p in paths):
        return None
    frames = []
    for path in paths:
        try:
            frames.append(pd.read_parquet(path))
        except (OSError, ValueError) as exc:  # a damaged file (pyarrow's errors are ValueErrors)
            raise ScenarioError(f"{path}: cannot read this point ({exc}); delete it to recompute "
                                "the point") from None
    engine = str(frames[0].attrs.get("engine", ""))
    for path, frame in zip(paths, frames):
        stored = (frame.attrs.get("point"), frame.attrs.get("values"))
        if stored != (index, _canonical(values)):
            raise ScenarioError(f"{path}: holds point {stored[0]!r} with values {stored[1]}, not "
                                f"point {index} with {_canonical(values)}; delete it to recompute "
                                "the point")
        frame.attrs.clear()
    return frames[0], frames[1], engine


def _write_point(out: Path, index: int, n_points: int, values: dict[str, Any],
                 outcome: tuple[pd.DataFrame, pd.DataFrame, str]) -> None:
    summary, promises, engine = outcome
    # promises first: a point counts as finished once its summary file exists
    for table, frame in (("promises", promises), ("summary", summary)):
        stored = frame.copy(deep=False)
        stored.attrs.clear()
        # pandas keeps attrs in Parquet: what point this is, checked when it is read back
        stored.attrs.update({"point": index, "values": _canonical(values), "engine": engine})

        def write(handle: Any, stored: pd.DataFrame = stored) -> None:
            stored.to_parquet(handle, index=False)

        _write_atomic(_point_file(out, table, index, n_points), write)

