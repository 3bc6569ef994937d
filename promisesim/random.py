"""Keyed, counter-based random streams shared by both engines.

Every random number in a simulation is a pure function of

``(root entropy, replication, purpose, entity, index)``

where *purpose* names what the number is for (``"time_to_failure"``,
``"arrival"``, ...), *entity* is the *name* of the agent, promise or call
site that uses it, and *index* counts its draws. Because a draw is addressed
rather than taken from a shared sequence:

* the reference engine can take draws one at a time while the vectorised
  engine computes millions at once for many replications and entities, and
  both get bit-identical numbers (no ``Generator`` object per stream: creating
  a million of them costs more than the simulation);
* adding an agent or a promise leaves every other entity's numbers unchanged
  (entities are keyed by name, not by position), which gives common random
  numbers across scenario variants;
* any replication can be recomputed alone.

The generator is a 128-bit keyed counter hash: the key is derived from the
root ``numpy.random.SeedSequence`` and the address by repeated SplitMix64
finalisation, and word ``i`` is ``mix(mix(k0 + i * golden) ^ k1)``. For a
fixed key this is the SplitMix64 sequence (which passes BigCrush, Steele et
al. 2014) passed through a second keyed finaliser, so streams with different
keys do not overlap even when their Weyl sequences do. It is not a
cryptographic generator.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

import numpy as np

__all__ = ["Streams", "StreamReader", "PURPOSES", "entity_key"]

#: Purposes of random draws. Append only: the code of a purpose is part of its key.
PURPOSES: dict[str, int] = {
    "time_to_failure": 0,
    "time_to_repair": 1,
    "arrival": 2,
    "service": 3,
    "maintenance": 4,
    "repair_success": 5,
    "observation": 6,
    "route": 7,
    "startup": 8,
    "reuse": 9,
    "hop": 10,
    "error": 11,
    "burst_gap": 12,
    "burst": 13,
    "backoff": 14,
    "cold_start": 15,
}

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB

_U_GOLDEN = np.uint64(_GOLDEN)
_U_M1 = np.uint64(_M1)
_U_M2 = np.uint64(_M2)
_S30, _S27, _S31, _S11 = (np.uint64(s) for s in (30, 27, 31, 11))
_ONE = np.uint64(1)
_TWO_POW_M53 = 2.0**-53


def _mix_int(x: int) -> int:
    """SplitMix64 finaliser on a Python int (exact, for deriving keys)."""
    x &= _MASK
    x ^= x >> 30
    x = (x * _M1) & _MASK
    x ^= x >> 27
    x = (x * _M2) & _MASK
    x ^= x >> 31
    return x


def _mix_inplace(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array, in place (wrapping arithmetic)."""
    x ^= x >> _S30
    x *= _U_M1
    x ^= x >> _S27
    x *= _U_M2
    x ^= x >> _S31
    return x


#: Elements per block of :func:`_draw_flat`: its buffers stay in the CPU's cache.
_DRAW_BLOCK = 1 << 13


def _draw_flat(dist, k0: np.ndarray, k1: np.ndarray, index: np.ndarray,  # type: ignore[no-untyped-def]
               rows: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """:meth:`Streams.draw_at` for one uniform per draw and flat arrays of one shape: the
    same wrapping integer operations, done in place on cache-sized blocks (each full-size
    temporary would cost a pass through memory). With ``rows``, the keys of draw ``i`` are
    ``k0[rows[i]], k1[rows[i]]`` (gathered a block at a time)."""
    n = index.size
    if out is None:
        out = np.empty(n)
    block = max(1, min(n, _DRAW_BLOCK))
    x = np.empty(block, dtype=np.uint64)
    t = np.empty(block, dtype=np.uint64)
    u = np.empty((1, block))
    exact = index.dtype == np.uint64
    one_key = rows is not None and k0.size == 1   # one replication: no gathers
    if one_key:
        key0, key1 = k0[0], k1[0]
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        b = hi - lo
        xb, tb, ub = x[:b], t[:b], u[:, :b]
        if exact:
            np.multiply(index[lo:hi], _U_GOLDEN, out=xb)
        else:   # as index.astype(np.uint64)
            xb[...] = index[lo:hi]
            xb *= _U_GOLDEN
        if one_key:
            xb += key0
        elif rows is None:
            xb += k0[lo:hi]
        else:
            xb += np.take(k0, rows[lo:hi], out=tb)
        _mix_buffered(xb, tb)
        if one_key:
            xb ^= key1
        else:
            xb ^= k1[lo:hi] if rows is None else np.take(k1, rows[lo:hi], out=tb)
        _mix_buffered(xb, tb)
        xb >>= _S11
        xb += _ONE
        np.multiply(xb, _TWO_POW_M53, out=ub[0], casting="unsafe")   # exact: below 2**53
        out[lo:hi] = dist.from_uniforms(ub)
    return out


def _mix_buffered(x: np.ndarray, t: np.ndarray) -> None:
    """:func:`_mix_inplace` with ``t`` (same shape) for the shifted copies."""
    np.right_shift(x, _S30, out=t)
    x ^= t
    x *= _U_M1
    np.right_shift(x, _S27, out=t)
    x ^= t
    x *= _U_M2
    np.right_shift(x, _S31, out=t)
    x ^= t


@functools.lru_cache(maxsize=1 << 16)
def entity_key(name: str) -> int:
    """A stable 64-bit key for an entity name (BLAKE2b of its UTF-8 bytes)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class Streams:
    """The random numbers of one experiment, addressed by key.

    Parameters
    ----------
    seed : int, numpy.random.SeedSequence or None
        Root entropy. ``None`` draws fresh entropy from the operating system;
        it is kept in :attr:`entropy` so the run can be reproduced.

    Examples
    --------
    >>> s = Streams(1)
    >>> u = s.uniforms(replication=0, purpose="arrival", entity="p1", start=0, count=3)
    >>> bool(((0 < u) & (u <= 1)).all())
    True
    >>> bool((u == Streams(1).uniforms(0, "arrival", "p1", 0, 3)).all())
    True
    """

    def __init__(self, seed: int | np.random.SeedSequence | None = None) -> None:
        if isinstance(seed, np.random.SeedSequence):
            self.seed_sequence = seed
        else:
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
                raise TypeError(f"seed must be an int, a SeedSequence or None, got {seed!r}")
            if seed is not None and seed < 0:
                raise ValueError(f"seed must be non-negative, got {seed}")
            self.seed_sequence = np.random.SeedSequence(None if seed is None else int(seed))
        state = self.seed_sequence.generate_state(2, np.uint64)
        self._root = (int(state[0]), int(state[1]))

    @property
    def entropy(self) -> int:
        """The root entropy (an int), enough to reproduce every draw."""
        return int(self.seed_sequence.entropy)  # type: ignore[arg-type]

    # -- keys ---------------------------------------------------------------
    def key(self, replication: int, purpose: str, entity: str) -> tuple[int, int]:
        """The 128-bit key ``(k0, k1)`` of one stream."""
        code = PURPOSES[purpose]
        ent = entity_key(entity)
        r0, r1 = self._root
        base = _mix_int(_mix_int(r0 ^ (code * _GOLDEN)) + ent)
        k0 = _mix_int(base + (int(replication) + 1) * _GOLDEN)
        k1 = _mix_int(_mix_int(r1 + ent) ^ k0)
        return k0, k1

    def keys(
        self, replications: Sequence[int] | np.ndarray, purpose: str, entity: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keys of one (purpose, entity) for many replications, as two uint64 arrays.

        Vectorised over replications; equal, bit for bit, to :meth:`key` for each.
        """
        code = PURPOSES[purpose]
        ent = entity_key(entity)
        r0, r1 = self._root
        base = _mix_int(_mix_int(r0 ^ ((code * _GOLDEN) & _MASK)) + ent)
        tail = _mix_int(r1 + ent)
        reps = np.asarray(replications, dtype=np.uint64).ravel()
        k0 = (reps + _ONE) * _U_GOLDEN + np.uint64(base)
        _mix_inplace(k0)
        k1 = k0 ^ np.uint64(tail)
        _mix_inplace(k1)
        return k0, k1

    def keys_many(
        self, replications: Sequence[int] | np.ndarray, purpose: str, entities: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keys of one purpose for many entities and replications: flat arrays, entity-major
        (``index = entity * len(replications) + replication``), equal to :meth:`keys` per entity."""
        code = PURPOSES[purpose]
        r0, r1 = self._root
        ents = np.array([entity_key(e) for e in entities], dtype=np.uint64)
        head = np.uint64(_mix_int(r0 ^ ((code * _GOLDEN) & _MASK)))
        base = _mix_inplace(np.atleast_1d(head) + ents)                    # per entity
        tail = _mix_inplace(np.atleast_1d(np.uint64(r1)) + ents)           # per entity
        reps = np.asarray(replications, dtype=np.uint64).ravel()
        k0 = ((reps + _ONE) * _U_GOLDEN)[None, :] + base[:, None]
        _mix_inplace(k0)
        k1 = k0 ^ tail[:, None]
        _mix_inplace(k1)
        return k0.ravel(), k1.ravel()

    # -- draws --------------------------------------------------------------
    @staticmethod
    def words(k0: np.ndarray | int, k1: np.ndarray | int, index: np.ndarray) -> np.ndarray:
        """Random 64-bit words at ``index`` of the streams with keys ``(k0, k1)``.

        ``k0``, ``k1`` and ``index`` broadcast against each other.
        """
        index = np.asarray(index, dtype=np.uint64)
        k0 = np.asarray(k0, dtype=np.uint64)
        k1 = np.asarray(k1, dtype=np.uint64)
        shape = np.broadcast_shapes(index.shape, k0.shape, k1.shape)
        # Work on arrays of at least one dimension: numpy scalars are immutable (the in-place
        # mixing would be lost) and warn on the wrapping multiplication.
        x = np.atleast_1d(index) * _U_GOLDEN + np.atleast_1d(k0)
        x = np.bitwise_xor(_mix_inplace(x), np.atleast_1d(k1))
        return _mix_inplace(x).reshape(shape)

    @classmethod
    def uniforms_at(cls, k0: np.ndarray | int, k1: np.ndarray | int, index: np.ndarray) -> np.ndarray:
        """Uniforms in ``(0, 1]`` with 53 random bits at ``index`` of the keyed streams."""
        w = cls.words(k0, k1, index)
        w >>= _S11
        w += _ONE
        return w.astype(np.float64) * _TWO_POW_M53

    def uniforms(
        self, replication: int, purpose: str, entity: str, start: int, count: int
    ) -> np.ndarray:
        """``count`` uniforms of one stream from draw ``start`` on."""
        k0, k1 = self.key(replication, purpose, entity)
        index = np.arange(start, start + count, dtype=np.uint64)
        return self.uniforms_at(k0, k1, index)

    @staticmethod
    def draw_at(dist, k0, k1, index: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
        """Draws of ``dist`` at ``index`` of the keyed streams.

        A distribution needing ``m`` uniforms per draw uses stream words
        ``m * index + j`` for ``j < m``.
        """
        index = np.asarray(index, dtype=np.uint64)
        shape = np.broadcast_shapes(np.shape(k0), np.shape(k1), index.shape)
        m = dist.n_uniforms
        if not dist.is_random:   # the words would be thrown away
            return dist.from_uniforms(np.ones((m, int(np.prod(shape))))).reshape(shape)
        if m == 1 and index.ndim == 1 and np.shape(k0) == shape and np.shape(k1) == shape:
            return _draw_flat(dist, np.asarray(k0, dtype=np.uint64), np.asarray(k1, dtype=np.uint64),
                              index)
        index = np.broadcast_to(index, shape)
        if m == 1:
            u = Streams.uniforms_at(k0, k1, index)[np.newaxis]
        else:
            lanes = np.arange(m, dtype=np.uint64).reshape((m,) + (1,) * index.ndim)
            u = Streams.uniforms_at(k0, k1, index * np.uint64(m) + lanes)
        return dist.from_uniforms(u.reshape(m, -1)).reshape(index.shape)

    @staticmethod
    def draw_rows(dist, k0: np.ndarray, k1: np.ndarray, rows: np.ndarray, index: np.ndarray,  # type: ignore[no-untyped-def]
                  out: np.ndarray | None = None) -> np.ndarray:
        """``draw_at(dist, k0[rows], k1[rows], index)`` (flat ``rows`` and ``index``, any
        integer type), without the full-size gathered keys; into ``out`` if given.

        For draws in many replications from per-replication keys (``rows``: each draw's
        replication, as a position in ``k0`` and ``k1``).
        """
        rows = np.asarray(rows)
        index = np.asarray(index)
        if dist.n_uniforms == 1 and dist.is_random and rows.ndim == 1 and index.shape == rows.shape:
            return _draw_flat(dist, np.asarray(k0, dtype=np.uint64), np.asarray(k1, dtype=np.uint64),
                              index, rows=rows, out=out)
        values = Streams.draw_at(dist, np.asarray(k0)[rows], np.asarray(k1)[rows],
                                 index.astype(np.uint64))
        if out is None:
            return values
        out[...] = values
        return out

    def draws(
        self, dist, replication: int, purpose: str, entity: str, start: int, count: int
    ) -> np.ndarray:  # type: ignore[no-untyped-def]
        """``count`` draws of ``dist`` from one stream, from draw ``start`` on."""
        k0, k1 = self.key(replication, purpose, entity)
        return self.draw_at(dist, k0, k1, np.arange(start, start + count, dtype=np.uint64))


class StreamReader:
    """Sequential or random access to one stream's draws, computed in blocks.

    The reference engine uses one reader per (replication, purpose, entity);
    it reads the very numbers the vectorised engine computes in bulk.
    """

    __slots__ = ("dist", "k0", "k1", "block", "_start", "_values")

    def __init__(self, streams: Streams, dist, replication: int, purpose: str, entity: str,
                 block: int = 256) -> None:  # type: ignore[no-untyped-def]
        self.dist = dist
        self.k0, self.k1 = streams.key(replication, purpose, entity)
        self.block = block
        self._start = -1
        self._values: list[float] = []

    def __getitem__(self, index: int) -> float:
        offset = index - self._start
        if self._start < 0 or not 0 <= offset < self.block:
            self._start = index - index % self.block
            idx = np.arange(self._start, self._start + self.block, dtype=np.uint64)
            self._values = Streams.draw_at(self.dist, self.k0, self.k1, idx).tolist()
            offset = index - self._start
        return self._values[offset]
