"""Tests of the crash-safe sweep store."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import robogate.datasets.store
from robogate.datasets.store import StoreCorruptError, StoreError, SweepStore

# Deterministic batches, shared by the test process and the child process it kills.
BATCH_SRC = textwrap.dedent(
    """
    BATCH = 8

    def make_batch(b):
        rows = []
        for i in range(BATCH):
            k = b * BATCH + i
            rows.append({
                "id": k, "friction": 0.05 + 0.01 * k, "obstacles": k % 5,
                "shape": ["box", "cylinder", "sphere"][k % 3], "seed": 1000 + k,
                "stage": 1 + (b >= 20), "batch": b, "outcome": "success" if k % 4 else "grip_loss",
                "success": bool(k % 4), "steps": 100 + k, "sim_time": 0.5 * k, "wall_time": 0.01,
                # None in most batches, a message in some: exercises null -> string promotion.
                "error": "boom" if b % 7 == 3 and i == 0 else None,
            })
        return rows
    """
)
_ns: dict = {}
exec(BATCH_SRC, _ns)
make_batch, BATCH = _ns["make_batch"], _ns["BATCH"]

# The child loads store.py by path: a fast start, free of the package's heavier imports.
CHILD_SRC = BATCH_SRC + textwrap.dedent(
    """
    import importlib.util, sys
    path, start, stop, module_file, stepped = sys.argv[1:]
    spec = importlib.util.spec_from_file_location("store_under_test", module_file)
    store_module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(store_module)
    store = store_module.SweepStore.open(path)
    print("ready", flush=True)
    for b in range(int(start), int(stop)):
        if stepped == "stepped":  # one batch per line the test sends
            sys.stdin.readline()
        store.append(make_batch(b))
        if stepped == "stepped":
            print(f"appended {b}", flush=True)
    print("done", flush=True)
    """
)


def start_writer(path, start, stop, stepped=False):
    """A child process appending batches ``start..stop-1`` to the store at ``path``.

    ``stepped``: it appends one batch per line written to its stdin and acknowledges each.
    """
    args = [sys.executable, "-c", CHILD_SRC, str(path), str(start), str(stop), robogate.datasets.store.__file__,
            "stepped" if stepped else "free"]
    return subprocess.Popen(args, stdin=subprocess.PIPE if stepped else None, stdout=subprocess.PIPE, text=True)


def expected_frame(batches):
    rows = [r for b in batches for r in make_batch(b)]
    return pa.Table.from_pylist(rows).to_pandas()


@pytest.fixture
def store(tmp_path):
    return SweepStore.create(tmp_path / "sweep", {"env_id": "robogate/PickPlace-Panda-v0", "seed": 0})


def results_parts(store):
    return sorted((store.path / "results").glob("part-*.parquet"))


def test_round_trip_sorted_with_sensible_dtypes(store):
    for b in [2, 0, 1, 3]:  # out of id order
        store.append(make_batch(b))
    df = store.read()
    pd.testing.assert_frame_equal(df, expected_frame(range(4)))
    assert df["id"].tolist() == list(range(4 * BATCH))
    assert df["id"].dtype == "int64" and df["success"].dtype == bool
    assert df["friction"].dtype == "float64" and df["steps"].dtype == "int64"
    assert df.loc[df["batch"] == 3, "error"].iloc[0] == "boom"  # None in other parts
    assert len(store) == 4 * BATCH and store.finished_ids() == set(range(4 * BATCH))


def test_empty_store_and_empty_append(store):
    assert store.append([]) is None
    assert len(store) == 0 and store.read().empty and list(store.read().columns) == ["id"]


def test_schema_drift_new_and_null_columns(store):
    store.append([{"id": 1, "x": 1, "error": None}])
    store.append([{"id": 0, "x": 2.5, "error": "bad", "extra": "new"}])
    df = store.read()
    assert df["x"].tolist() == [2.5, 1.0]
    assert df["error"].iloc[0] == "bad" and pd.isna(df["error"].iloc[1])
    assert df["extra"].iloc[0] == "new" and pd.isna(df["extra"].iloc[1])


def test_conflicting_types_still_read(store):
    store.append([{"id": 0, "shape": 3}])
    store.append([{"id": 1, "shape": "box"}])
    assert store.read()["shape"].tolist() == [3, "box"]


def test_duplicate_ids_refused(store):
    store.append(make_batch(0))
    with pytest.raises(ValueError, match=r"already stored.*\b3\b"):
        store.append([{"id": 3, "x": 1.0}, {"id": 100, "x": 1.0}])
    with pytest.raises(ValueError, match="duplicate ids within the batch: 100"):
        store.append([{"id": 100}, {"id": 100}])
    with pytest.raises(ValueError, match="integer"):
        store.append([{"id": 1.0}])
    with pytest.raises(ValueError, match="no 'id'"):
        store.append([{"x": 1.0}])
    assert len(results_parts(store)) == 1 and len(store) == BATCH


def test_reopened_store_continues_numbering(store):
    store.append(make_batch(0))
    reopened = SweepStore.open(store.path)
    with pytest.raises(ValueError, match="already stored"):
        reopened.append(make_batch(0))
    reopened.append(make_batch(1))
    assert [p.name[:11] for p in results_parts(store)] == ["part-000000", "part-000001"]
    pd.testing.assert_frame_equal(SweepStore.open(store.path).read(), expected_frame([0, 1]))


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path):
    """Each writer is let through a random number of whole batches, started on one more and
    killed a random fraction of a millisecond or a few later: before, during or after that append.
    The kill always lands, since the writer cannot go on without the test's next line."""
    n_batches, rng = 60, random.Random(20240607)
    for k in range(6):
        path = tmp_path / f"sweep{k}"
        SweepStore.create(path, {"seed": k})
        proc = start_writer(path, 0, n_batches, stepped=True)
        assert proc.stdout.readline().strip() == "ready"
        let_through = rng.randrange(n_batches - 1)
        for b in range(let_through):
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == f"appended {b}"
        proc.stdin.write("go\n")
        proc.stdin.flush()
        time.sleep(rng.uniform(0.0, 0.004))  # where in the next append the kill lands: any answer is right
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        store = SweepStore.open(path)
        df = store.read()  # every part present reads cleanly
        n_done = len(df) // BATCH
        assert n_done in (let_through, let_through + 1)  # whole batches only, none lost
        assert len(df) == n_done * BATCH and len(results_parts(store)) == n_done
        if n_done:
            pd.testing.assert_frame_equal(df, expected_frame(range(n_done)))
        finished = store.finished_ids()
        for b in range(n_batches):  # resume
            ids = {r["id"] for r in make_batch(b)}
            assert ids <= finished or not ids & finished
            if not ids & finished:
                store.append(make_batch(b))
        store.cleanup()
        assert not [p for p in path.rglob("*") if p.name.endswith(".tmp")]
        pd.testing.assert_frame_equal(SweepStore.open(path).read(), expected_frame(range(n_batches)))


@pytest.mark.slow
def test_concurrent_writers_serialise(tmp_path):
    store = SweepStore.create(tmp_path / "sweep", {})
    writers = [start_writer(store.path, 0, 25), start_writer(store.path, 25, 50)]
    for proc in writers:
        assert proc.communicate(timeout=120)[0].split() == ["ready", "done"]
    sequence = sorted(int(p.name.split("-")[1]) for p in results_parts(store))
    assert sequence == list(range(50))
    pd.testing.assert_frame_equal(store.read(), expected_frame(range(50)))


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_part_detected(store, damage):
    for b in range(3):
        store.append(make_batch(b))
    victim = results_parts(store)[1]
    data = bytearray(victim.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 3] ^= 0x01
    victim.write_bytes(bytes(data))
    reopened = SweepStore.open(store.path)
    for call in (reopened.read, reopened.finished_ids, lambda: reopened.append(make_batch(5))):
        with pytest.raises(StoreCorruptError, match=f"{victim.name}.*checksum mismatch"):
            call()


def test_part_that_is_not_parquet_detected(store):
    store.append(make_batch(0))
    bogus = store.path / "results" / "part-000001-0123456789abcdef.parquet"
    bogus.write_bytes(b"not parquet")
    with pytest.raises(StoreCorruptError, match=bogus.name):
        store.read()


def test_leftover_temp_file_ignored_and_cleaned(store):
    store.append(make_batch(0))
    good = results_parts(store)[0]
    # What a writer killed mid-write leaves: a hidden, partial temporary file.
    leftover = good.parent / ".part-000001-deadbeefdeadbeef.parquet.123-abcd.tmp"
    leftover.write_bytes(good.read_bytes()[:50])
    (store.path / ".manifest.json.9-ffff.tmp").write_text("{")
    reopened = SweepStore.open(store.path)
    pd.testing.assert_frame_equal(reopened.read(), expected_frame([0]))
    reopened.append(make_batch(1))
    removed = reopened.cleanup()
    assert sorted(p.name for p in removed) == sorted([leftover.name, ".manifest.json.9-ffff.tmp"])
    assert not leftover.exists()
    pd.testing.assert_frame_equal(reopened.read(), expected_frame([0, 1]))


def test_unwritable_location_names_path(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file")
    target = blocker / "sweep"
    with pytest.raises(StoreError, match=f"{target}.*not writable"):
        SweepStore.create(target, {})
    with pytest.raises(StoreError, match="not a folder"):
        SweepStore.create(blocker, {})


def test_create_and_open_errors(tmp_path, store):
    with pytest.raises(StoreError, match="already holds a sweep store"):
        SweepStore.create(store.path, {})
    assert SweepStore.create(store.path, {"other": 1}, exist_ok=True).manifest == store.manifest
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("x")
    with pytest.raises(StoreError, match="not empty"):
        SweepStore.create(tmp_path / "busy", {}, exist_ok=True)
    with pytest.raises(StoreError, match="no manifest.json"):
        SweepStore.open(tmp_path / "busy")
    with pytest.raises(StoreError, match="not a directory"):
        SweepStore.open(tmp_path / "missing")
    with pytest.raises(ValueError, match="set by the store"):
        SweepStore.create(tmp_path / "new", {"format_version": 9})


def test_manifest_round_trip_and_update(store):
    m = store.manifest
    assert m["env_id"] == "robogate/PickPlace-Panda-v0" and m["format_version"] == 1 and "created" in m
    store.update_manifest(status="complete", n=np.int64(3), bounds=np.array([0.1, 0.2]))
    assert store.manifest["n"] == 3 and store.manifest["bounds"] == [0.1, 0.2]
    on_disk = json.loads((store.path / "manifest.json").read_text())
    assert on_disk["status"] == "complete" and on_disk["env_id"] == m["env_id"]
    assert SweepStore.open(store.path).manifest == store.manifest == on_disk


def test_plan_and_pending(store):
    trials = [{"id": k, "stage": 1, "batch": k // 4, "seed": 7 + k,
               "params": {"friction": 0.1 * (k + 1), "shape": "box"}} for k in range(12)]
    store.plan(trials[8:])
    store.plan(trials[:8])
    planned = store.planned()
    assert planned["id"].tolist() == list(range(12))
    assert list(planned.columns) == ["id", "stage", "batch", "seed", "friction", "shape"]
    assert planned["friction"].tolist() == pytest.approx([0.1 * (k + 1) for k in range(12)])
    with pytest.raises(ValueError, match="already stored in plan"):
        store.plan(trials[:1])
    store.append([{"id": k, "success": True} for k in range(5)])
    pending = store.pending()
    assert set(pending["id"]) == set(planned["id"]) - store.finished_ids() == set(range(5, 12))


def test_compact_is_crash_safe(store):
    for b in range(5):
        store.append(make_batch(b))
    old = {p.name: p.read_bytes() for p in results_parts(store)}
    (merged,) = store.compact()
    assert merged.name.startswith("part-000000-000004-") and results_parts(store) == [merged]
    pd.testing.assert_frame_equal(store.read(), expected_frame(range(5)))
    # A kill between writing the merged part and removing the old ones leaves both behind.
    for name, data in old.items():
        (store.path / "results" / name).write_bytes(data)
    reopened = SweepStore.open(store.path)
    pd.testing.assert_frame_equal(reopened.read(), expected_frame(range(5)))
    assert len(reopened) == 5 * BATCH
    reopened.append(make_batch(5))  # numbering continues after the merged range
    assert results_parts(reopened)[-1].name.startswith("part-000005-")
    assert len(reopened.cleanup()) == 5
    pd.testing.assert_frame_equal(reopened.read(), expected_frame(range(6)))


def test_numpy_scalars_accepted(store):
    store.append([{"id": np.int64(0), "x": np.float32(0.5), "ok": np.bool_(True), "n": np.int32(3)}])
    df = store.read()
    assert df["id"].tolist() == [0] and df["ok"].dtype == bool and df["n"].tolist() == [3]


def test_copying_a_store_keeps_it_readable(store, tmp_path):
    store.append(make_batch(0))
    copy = tmp_path / "copy"
    shutil.copytree(store.path, copy)
    pd.testing.assert_frame_equal(SweepStore.open(copy).read(), expected_frame([0]))
    assert os.path.exists(copy / "manifest.json")
