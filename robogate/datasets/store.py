"""Crash-safe, append-only storage of a sweep's experiments.

A sweep store is a folder::

    manifest.json                       what the sweep is (env, policy, space, seed, versions)
    plan/part-000000-<sha16>.parquet    experiments planned before they run
    results/part-000000-<sha16>.parquet finished experiments, one part per ``append``
    results/part-000000-000041-<sha16>.parquet   a compacted part replacing parts 0..41

Every file is written to a hidden temporary file in the same folder, flushed, ``fsync``-ed and
renamed into place with ``os.replace``; the folder is then ``fsync``-ed too. A part therefore
appears whole or not at all, whenever the writing process is killed (``SIGKILL`` included).
A part's name carries its write sequence number and the first 16 hex digits of the SHA-256 of
its bytes, which every read verifies: a truncated or altered part raises
:class:`StoreCorruptError` and is never read or skipped silently. Leftover temporary files are
ignored and removed by :meth:`SweepStore.cleanup`.

Writers serialise on an advisory ``flock`` of ``.lock`` in the store folder (POSIX), so two
processes appending to one store can neither reuse a sequence number nor store an id twice.
:class:`StoreWriter` appends finished records as they arrive, in small parts, at least every
:data:`FLUSH_SECONDS`.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import hashlib
import json
import os
import re
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from robogate._utils.checks import is_integer
from robogate.envs.outcomes import Outcome

try:  # POSIX only; without it a store has a single writer by convention.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["FORMAT_VERSION", "StoreCorruptError", "StoreError", "StoreWriter", "SweepStore"]

#: Version of the on-disk layout written by this module.
FORMAT_VERSION = 1

_MANIFEST = "manifest.json"
_LOCK = ".lock"
_RESULTS = "results"
_PLAN = "plan"
_RESERVED_KEYS = ("format_version", "created")
_PART_RE = re.compile(r"^part-(\d{6,})(?:-(\d{6,}))?-([0-9a-f]{16})\.parquet$")
_PREVIEW = 10  # how many offending ids an error message lists


class StoreError(Exception):
    """A sweep store cannot be created, opened or written."""


class StoreCorruptError(StoreError):
    """A file of a sweep store is truncated, altered or inconsistent with the others."""


# ----------------------------------------------------------------------------- file helpers


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def _fsync_dir(directory: Path) -> None:
    """Persist a folder's entries (a rename or unlink in it); a no-op where unsupported."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` holds either all of it or its old state."""
    tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"manifest value of type {type(obj).__name__} is not JSON-serialisable: {obj!r}")


def _manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, default=_json_default) + "\n").encode()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _preview(ids: Iterable[int]) -> str:
    ids = sorted(ids)
    more = f" and {len(ids) - _PREVIEW} more" if len(ids) > _PREVIEW else ""
    return ", ".join(map(str, ids[:_PREVIEW])) + more


# ------------------------------------------------------------------------------- rows -> table


def _check_id(value: Any, index: int) -> int:
    if not is_integer(value):
        raise ValueError(f"record {index}: 'id' must be an integer, got {value!r}")
    return int(value)


def _flatten(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Copy a record, lifting the entries of a nested ``params`` mapping to the top level."""
    if not isinstance(row, Mapping):
        raise TypeError(f"record {index} must be a mapping, got {type(row).__name__}")
    flat = {k: v for k, v in row.items() if k != "params" or not isinstance(v, Mapping)}
    nested = row.get("params")
    if isinstance(nested, Mapping):
        clash = sorted(set(nested) & set(flat))
        if clash:
            raise ValueError(f"record {index}: params {clash} clash with top-level fields")
        flat.update(nested)
    if "id" not in flat:
        raise ValueError(f"record {index} has no 'id'")
    flat["id"] = _check_id(flat["id"], index)
    return flat


def _to_table(records: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Build an Arrow table from flat records; a missing field is a null."""
    rows = [_flatten(r, i) for i, r in enumerate(records)]
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        seen: set[int] = set()
        dup = {i for i in ids if i in seen or seen.add(i)}
        raise ValueError(f"duplicate ids within the batch: {_preview(dup)}")
    names = list(dict.fromkeys(k for r in rows for k in r))
    columns = {}
    for name in names:
        values = [r.get(name) for r in rows]
        values = [v.item() if isinstance(v, np.generic) else v for v in values]
        try:
            columns[name] = pa.array(values, type=pa.int64() if name == "id" else None)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            kinds = sorted({type(v).__name__ for v in values if v is not None})
            raise ValueError(f"column {name!r} mixes incompatible value types {kinds}: {exc}") from exc
    return pa.table(columns)


def _concat(tables: list[pa.Table]) -> pa.Table | pd.DataFrame:
    """Concatenate parts, promoting types (null -> string, int -> float, new columns).

    Returns a pandas DataFrame (object columns) only when a column's types cannot be unified.
    """
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.concat([t.to_pandas() for t in tables], ignore_index=True)


# ------------------------------------------------------------------------------------ parts


class _Part(NamedTuple):
    first: int  # write sequence numbers covered (first == last unless compacted)
    last: int
    digest: str
    name: str
    dir: Path

    @property
    def path(self) -> Path:
        return self.dir / self.name


def _parse_part_name(name: str) -> tuple[int, int, str] | None:
    """``(first, last, digest)`` of a part file name, None for other files."""
    if name.startswith("."):
        return None  # temporary files and the like
    m = _PART_RE.match(name)
    if m is None:
        if name.startswith("part-"):
            raise StoreCorruptError(f"{name}: unexpected part file name")
        return None
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) else first
    if last < first:
        raise StoreCorruptError(f"{name}: part range {first}..{last} is empty")
    return first, last, m.group(3)


class _PartLog:
    """One folder of immutable, checksummed Parquet parts keyed by an integer ``id``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._ids_by_part: dict[str, np.ndarray] = {}
        self._ids: set[int] = set()
        self._ids_from: set[str] = set()  # part names whose ids are in self._ids
        self._parsed: dict[str, tuple[int, int, str] | None] = {}

    def scan(self) -> tuple[list[_Part], list[_Part]]:
        """Return ``(active, superseded)`` parts, each sorted by sequence number."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return [], []
        parts = []
        for name in names:
            if name not in self._parsed:
                try:
                    self._parsed[name] = _parse_part_name(name)
                except StoreCorruptError as exc:
                    raise StoreCorruptError(f"{self.dir}/{exc}") from None
            parsed = self._parsed[name]
            if parsed is not None:
                parts.append(_Part(*parsed, name, self.dir))
        parts.sort(key=lambda p: (p.first, -p.last, p.digest))
        active: list[_Part] = []
        superseded: list[_Part] = []
        for p in parts:
            cover = active[-1] if active else None
            if cover is not None and p.first <= cover.last:
                if p.last <= cover.last and (p.first, p.last) != (cover.first, cover.last):
                    superseded.append(p)  # left behind by a compaction
                    continue
                raise StoreCorruptError(
                    f"{p.path}: its sequence range {p.first}..{p.last} overlaps "
                    f"{cover.name} ({cover.first}..{cover.last})"
                )
            active.append(p)
        return active, superseded

    def next_sequence(self) -> int:
        active, superseded = self.scan()
        return max((p.last for p in active + superseded), default=-1) + 1

    @staticmethod
    def read_part(part: _Part, columns: list[str] | None = None) -> pa.Table:
        """Read one part, verifying its checksum, its Parquet structure and its ``id``s."""
        data = part.path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()[:16]
        if digest != part.digest:
            raise StoreCorruptError(
                f"{part.path}: checksum mismatch, the file is truncated or corrupted "
                f"(sha256 prefix {digest}, name says {part.digest}; {len(data)} bytes)"
            )
        try:
            # ParquetFile, single-threaded: several times faster than read_table on small parts.
            table = pq.ParquetFile(pa.BufferReader(data)).read(columns=columns, use_threads=False)
        except Exception as exc:  # checksum matched, so this is a bad write, not a bad disk
            raise StoreCorruptError(f"{part.path}: unreadable Parquet: {exc}") from exc
        if "id" not in table.column_names or not pa.types.is_integer(table.schema.field("id").type):
            raise StoreCorruptError(f"{part.path}: no integer 'id' column")
        if table.column("id").null_count:
            raise StoreCorruptError(f"{part.path}: null 'id' values")
        return table

    def _with_retry(self, fn):
        # A concurrent compaction may remove a part between listing and reading it.
        for attempt in range(3):
            try:
                return fn(self.scan()[0])
            except FileNotFoundError:
                if attempt == 2:
                    raise

    def read_table(self) -> pa.Table | pd.DataFrame | None:
        """All rows of the active parts, checked for unique ids; ``None`` when empty."""

        def read(active: list[_Part]):
            tables = [self.read_part(p) for p in active]
            if not tables:
                return None
            ids = np.concatenate([t.column("id").to_numpy() for t in tables])
            uniq, counts = np.unique(ids, return_counts=True)
            if (counts > 1).any():
                dup = uniq[counts > 1]
                where = [p.name for p, t in zip(active, tables) if np.isin(t.column("id").to_numpy(), dup).any()]
                raise StoreCorruptError(
                    f"{self.dir}: ids {_preview(dup.tolist())} are stored more than once (in {', '.join(where)})"
                )
            return _concat(tables)

        return self._with_retry(read)

    def ids(self) -> set[int]:
        """Ids of the active parts; each part is read (and verified) once per instance."""

        def refresh(active: list[_Part]) -> set[int]:
            names = {p.name for p in active}
            if not self._ids_from <= names:  # parts went away (compaction): start over
                self._ids, self._ids_from = set(), set()
            for p in active:
                if p.name not in self._ids_by_part:
                    self._ids_by_part[p.name] = self.read_part(p, ["id"]).column("id").to_numpy()
            for p in active:
                if p.name in self._ids_from:
                    continue
                new = self._ids_by_part[p.name].tolist()
                clash = self._ids.intersection(new)
                if clash:
                    raise StoreCorruptError(f"{p.path}: holds ids stored in another part: {_preview(clash)}")
                if len(set(new)) != len(new):
                    raise StoreCorruptError(f"{p.path}: holds the same id more than once")
                self._ids.update(new)
                self._ids_from.add(p.name)
            for name in set(self._ids_by_part) - names:
                del self._ids_by_part[name]
            return self._ids

        return set(self._with_retry(refresh))

    def write(self, table: pa.Table, first: int, last: int) -> Path:
        """Write ``table`` as the part covering sequence numbers ``first..last``."""
        if not self.dir.is_dir():
            self.dir.mkdir(exist_ok=True)
            _fsync_dir(self.dir.parent)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        data = sink.getvalue().to_pybytes()
        digest = hashlib.sha256(data).hexdigest()[:16]
        span = f"{first:06d}" if first == last else f"{first:06d}-{last:06d}"
        path = self.dir / f"part-{span}-{digest}.parquet"
        _atomic_write(path, data)
        self._ids_by_part[path.name] = table.column("id").to_numpy()
        return path

    def append(self, table: pa.Table) -> Path:
        """Append ``table`` as a new part; the caller holds the store lock."""
        new = table.column("id").to_pylist()
        clash = self.ids().intersection(new)
        if clash:
            raise ValueError(f"ids already stored in {self.dir.name}/: {_preview(clash)}")
        seq = self.next_sequence()
        return self.write(table, seq, seq)

    def compact(self) -> Path | None:
        """Merge the active parts into one; crash-safe (the merged part supersedes the old)."""
        active, _ = self.scan()
        if len(active) < 2:
            self.remove_superseded()
            return None
        merged = self.read_table()
        if isinstance(merged, pd.DataFrame):
            raise StoreError(f"{self.dir}: cannot compact parts whose column types conflict")
        path = self.write(merged.sort_by("id"), active[0].first, active[-1].last)
        self.remove_superseded()
        return path

    def remove_superseded(self) -> list[Path]:
        removed = []
        for p in self.scan()[1]:
            with contextlib.suppress(FileNotFoundError):
                p.path.unlink()
                removed.append(p.path)
        for entry in os.scandir(self.dir) if self.dir.is_dir() else ():
            if _is_temp(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
        if removed:
            _fsync_dir(self.dir)
        return removed


def _to_frame(data: pa.Table | pd.DataFrame | None) -> pd.DataFrame:
    if data is None:
        return pd.DataFrame({"id": pd.Series([], dtype="int64")})
    if isinstance(data, pa.Table):
        return data.sort_by("id").to_pandas()
    return data.sort_values("id", kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------------ store


class SweepStore:
    """An append-only folder of checksummed Parquet parts plus a JSON manifest.

    Create one with :meth:`create` or open one with :meth:`open`. Records are flat dicts with
    a unique integer ``id``; a nested ``params`` mapping is lifted to top-level columns.
    A sweep killed at any moment (``SIGKILL`` included) leaves only whole parts behind: after
    :meth:`open`, :meth:`finished_ids` are exactly the experiments whose batch was appended,
    and :meth:`pending` the planned ones still to run.

    Parameters
    ----------
    path : str or os.PathLike
        Folder of an existing store (same as :meth:`open`).

    Examples
    --------
    >>> import tempfile, os
    >>> root = tempfile.mkdtemp()
    >>> store = SweepStore.create(os.path.join(root, "sweep"), {"env_id": "robogate/PickPlace-Panda-v0"})
    >>> _ = store.plan([{"id": 0, "stage": 1, "batch": 0, "seed": 11, "params": {"mass": 0.5}}])
    >>> _ = store.append([{"id": 0, "seed": 11, "mass": 0.5, "outcome": "success", "success": True}])
    >>> store.finished_ids(), len(store), len(store.pending())
    ({0}, 1, 0)
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self._path = Path(path)
        manifest_path = self._path / _MANIFEST
        if not self._path.is_dir():
            raise StoreError(f"no sweep store at {self._path}: not a directory")
        try:
            text = manifest_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise StoreError(f"{self._path} is not a sweep store: it has no {_MANIFEST}") from None
        try:
            manifest = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StoreCorruptError(f"{manifest_path}: invalid JSON: {exc}") from exc
        if not isinstance(manifest, dict) or not isinstance(manifest.get("format_version"), int):
            raise StoreCorruptError(f"{manifest_path}: not a sweep store manifest (no format_version)")
        if manifest["format_version"] > FORMAT_VERSION:
            raise StoreError(
                f"{self._path} has store format {manifest['format_version']}; this robogate reads "
                f"up to format {FORMAT_VERSION}, upgrade robogate to open it"
            )
        self._manifest = manifest
        self._results = _PartLog(self._path / _RESULTS)
        self._plan = _PartLog(self._path / _PLAN)

    # -- creation -------------------------------------------------------------------------

    @classmethod
    def create(
        cls, path: str | os.PathLike, manifest: Mapping[str, Any] | None = None, *, exist_ok: bool = False
    ) -> SweepStore:
        """Create a store at ``path`` with ``manifest``.

        Parameters
        ----------
        path : str or os.PathLike
            A folder that does not exist yet or is empty; parents are created.
        manifest : mapping, optional
            JSON-serialisable description of the sweep (env id, policy spec, parameter space,
            seed, sampler settings, package versions). ``format_version`` and ``created``
            (UTC, ISO 8601) are added by the store and may not be given.
        exist_ok : bool, default False
            If ``path`` already holds a store, open it (its manifest is left unchanged;
            compare :attr:`manifest` before resuming) instead of raising.

        Returns
        -------
        SweepStore

        Raises
        ------
        StoreError
            ``path`` is a file, a non-empty folder that is not a store, a store while
            ``exist_ok`` is false, or not writable.
        """
        path = Path(path)
        manifest = dict(manifest or {})
        reserved = [k for k in _RESERVED_KEYS if k in manifest]
        if reserved:
            raise ValueError(f"manifest keys {reserved} are set by the store")
        body = {"format_version": FORMAT_VERSION, "created": _now(), **manifest}
        data = _manifest_bytes(body)
        if path.is_dir():
            if (path / _MANIFEST).exists():
                if exist_ok:
                    return cls(path)
                raise StoreError(f"{path} already holds a sweep store; open it or pass exist_ok=True")
            if any(not _is_temp(p.name) for p in path.iterdir()):
                raise StoreError(f"cannot create a sweep store at {path}: folder is not empty")
        elif path.exists() or path.is_symlink():
            raise StoreError(f"cannot create a sweep store at {path}: it exists and is not a folder")
        try:
            path.mkdir(parents=True, exist_ok=True)
            _fsync_dir(path.parent)
            probe = path / f".probe-{secrets.token_hex(4)}.tmp"
            probe.write_bytes(b"")
            probe.unlink()
            _atomic_write(path / _MANIFEST, data)
        except OSError as exc:
            raise StoreError(f"cannot create a sweep store at {path}: not writable ({exc})") from exc
        return cls(path)

    @classmethod
    def open(cls, path: str | os.PathLike) -> SweepStore:
        """Open the existing store at ``path``.

        Raises
        ------
        StoreError
            ``path`` is not a folder or has no manifest.
        StoreCorruptError
            The manifest is not valid JSON.
        """
        return cls(path)

    # -- manifest -------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """Folder of the store."""
        return self._path

    @property
    def manifest(self) -> dict[str, Any]:
        """A copy of the manifest, including ``format_version`` and ``created``."""
        return copy.deepcopy(self._manifest)

    def update_manifest(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into the manifest and rewrite it atomically.

        Returns
        -------
        dict
            The new manifest.
        """
        reserved = [k for k in _RESERVED_KEYS if k in fields]
        if reserved:
            raise ValueError(f"manifest keys {reserved} are set by the store")
        with self._locked():
            current = json.loads((self._path / _MANIFEST).read_text(encoding="utf-8"))
            current.update(fields)
            data = _manifest_bytes(current)
            _atomic_write(self._path / _MANIFEST, data)
        self._manifest = json.loads(data)
        return self.manifest

    # -- writing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._path / _LOCK, "a") as fh:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # released by the kernel if killed
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def plan(self, trials: Iterable[Mapping[str, Any]]) -> Path | None:
        """Record experiments before they run, as one new part in ``plan/``.

        Parameters
        ----------
        trials : iterable of mapping
            One dict per experiment: ``id`` (int, unique across the plan) plus e.g.
            ``stage``, ``batch``, ``seed`` and the parameter values (flat, or nested under
            ``params``).

        Returns
        -------
        pathlib.Path or None
            The part written, or None when ``trials`` is empty.

        Raises
        ------
        ValueError
            An id is missing, not an integer, repeated, or already planned.
        """
        table = _to_table(trials)
        if not table.num_rows:
            return None
        with self._locked():
            return self._plan.append(table)

    def append(self, records: Iterable[Mapping[str, Any]]) -> Path | None:
        """Store finished experiments atomically, as one new part in ``results/``.

        Parameters
        ----------
        records : iterable of mapping
            Flat dicts with a unique integer ``id``; other values are scalars (None, bool, int,
            float, str). A field missing from a record is stored as null.

        Returns
        -------
        pathlib.Path or None
            The part written, or None when ``records`` is empty.

        Raises
        ------
        ValueError
            An id is missing, not an integer, repeated in the batch or already stored, or a
            column mixes incompatible types.
        """
        table = _to_table(records)
        if not table.num_rows:
            return None
        with self._locked():
            return self._results.append(table)

    def compact(self) -> list[Path]:
        """Merge the parts of ``results/`` and of ``plan/`` into one part each.

        Crash-safe: the merged part is written first and supersedes the parts it covers, which
        are then removed; a kill in between leaves them ignored until :meth:`cleanup`.

        Returns
        -------
        list of pathlib.Path
            The merged parts written.
        """
        with self._locked():
            written = [self._results.compact(), self._plan.compact()]
        return [p for p in written if p is not None]

    def cleanup(self) -> list[Path]:
        """Remove temporary files left by a killed writer and parts superseded by compaction.

        Returns
        -------
        list of pathlib.Path
            The files removed.
        """
        with self._locked():
            removed = self._results.remove_superseded() + self._plan.remove_superseded()
            for entry in os.scandir(self._path):
                if _is_temp(entry.name) and entry.is_file():
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        removed.append(Path(entry.path))
        return removed

    # -- reading --------------------------------------------------------------------------

    def read(self) -> pd.DataFrame:
        """All finished experiments, one row per id, sorted by id.

        Columns are the union over parts; a column absent from a part is null there, and a
        column that is null in one part and typed in another takes the type.

        Raises
        ------
        StoreCorruptError
            A part is truncated, altered or unreadable, or an id is stored twice.
        """
        return _to_frame(self._results.read_table())

    def planned(self) -> pd.DataFrame:
        """All planned experiments, one row per id, sorted by id."""
        return _to_frame(self._plan.read_table())

    def pending(self) -> pd.DataFrame:
        """Planned experiments that have not finished, sorted by id."""
        plan = self.planned()
        return plan[~plan["id"].isin(list(self.finished_ids()))].reset_index(drop=True)

    def finished_ids(self) -> set[int]:
        """Ids of the finished experiments (every part is verified when first seen)."""
        return self._results.ids()

    def __len__(self) -> int:
        return len(self._results.ids())

    def __repr__(self) -> str:
        return f"SweepStore({str(self._path)!r})"


#: Finished records are appended at least this often (seconds) ...
FLUSH_SECONDS = 1.0


#: ... or whenever this many are waiting.
FLUSH_ROWS = 500


class StoreWriter:
    """Buffers finished records and appends them to the store in small parts.

    A background thread flushes the buffer every :data:`FLUSH_SECONDS`, so finished
    records reach the disk even while every worker is busy with a long episode.
    """

    def __init__(self, store: SweepStore, bar: Any, n_finished: int, n_failed: int, n_errors: int):
        self.store = store
        self.bar = bar
        self.buffer: list[dict] = []
        self.n_finished = n_finished
        self.n_failed = n_failed
        self.n_errors = n_errors
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._flusher = threading.Thread(target=self._flush_periodically, name="robogate-flush", daemon=True)
        self._flusher.start()

    def add(self, record: dict) -> None:
        self._raise_flush_error()
        self.n_finished += 1
        broken = record.get("outcome") == Outcome.ERROR.value
        self.n_errors += broken
        self.n_failed += not broken and not record["success"]
        if self.bar is not None:  # tqdm shows the rate; the postfix says how the policy fares
            judged = self.n_finished - self.n_errors
            postfix = f"fail {self.n_failed / judged:.1%}" if judged else "fail n/a"
            if self.n_errors:
                postfix += f", {self.n_errors} errored"
            self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.update(1)
        with self._lock:
            self.buffer.append(record)
            full = len(self.buffer) >= FLUSH_ROWS
        if full:
            self.flush()

    def flush(self) -> None:
        """Append the buffered records to the store now."""
        with self._lock:
            if self.buffer:
                batch, self.buffer = self.buffer, []
                self.store.append(batch)

    def close(self) -> None:
        """Stop the flush thread and store what is left."""
        self._stop.set()
        self._flusher.join()
        self.flush()
        self._raise_flush_error()

    def _flush_periodically(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except BaseException as exc:  # reported by the sweep's thread
                self._error = exc
                return

    def _raise_flush_error(self) -> None:
        if self._error is not None:
            raise self._error
