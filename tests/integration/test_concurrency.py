"""Several runtime invocations at once must not trip over each other."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import pid_alive, wait_for

N = 10
STATUSES = {"creating", "created", "running", "stopped", "paused"}


def test_parallel_containers(rt, bundle):
    bundles = [bundle(["sh", "-c", f"echo {i} > /tmp/me; exec sleep 100"]) for i in range(N)]
    ids = [rt.new_id() for _ in range(N)]

    def up(i):
        rt.create_started(bundles[i], ids[i])
        return rt.state(ids[i])

    with ThreadPoolExecutor(N) as pool:
        states = list(pool.map(up, range(N)))
    assert [s["status"] for s in states] == ["running"] * N
    assert len({s["pid"] for s in states}) == N
    assert sorted(rt.run("list", "-q").stdout.split()) == sorted(ids)
    for i, b in enumerate(bundles):
        wait_for(lambda: (b.rootfs / "tmp" / "me").exists(), what=f"container {i}")
        assert (b.rootfs / "tmp" / "me").read_text() == f"{i}\n"

    with ThreadPoolExecutor(N) as pool:
        list(pool.map(lambda cid: rt.delete(cid, force=True), ids))
    assert rt.run("list", "-q").stdout.split() == []
    for cid, b, st in zip(ids, bundles, states):
        wait_for(lambda: not pid_alive(st["pid"]), what="init to die")
        rt.assert_clean(cid, b)


def test_parallel_foreground_runs(rt, bundle):
    bundles = [bundle(["sh", "-c", f"echo out-{i}; exit {i}"]) for i in range(N)]
    with ThreadPoolExecutor(N) as pool:
        results = list(pool.map(lambda i: rt.run_fg(bundles[i]), range(N)))
    assert [r.returncode for r in results] == list(range(N))
    assert [r.stdout for r in results] == [f"out-{i}\n" for i in range(N)]


@pytest.mark.puncker_only  # runc 1.1 lets two racing creates of one id both "succeed"
def test_same_id_created_concurrently(rt, bundle):
    cid = rt.new_id()
    bundles = [bundle(["sleep", "100"]) for _ in range(N)]
    barrier = threading.Barrier(N)

    def attempt(b):
        rt.bundles.append(b)
        barrier.wait()
        return rt.run("create", "--bundle", b.path, cid, check=False)

    with ThreadPoolExecutor(N) as pool:
        results = list(pool.map(attempt, bundles))
    winners = [b for b, r in zip(bundles, results) if r.returncode == 0]
    assert len(winners) == 1, [r.stderr for r in results]
    assert all(r.stderr.strip() for r in results if r.returncode != 0)
    st = rt.state(cid)
    assert st["status"] == "created"
    assert st["bundle"] == str(winners[0].path)
    rt.delete(cid, force=True)
    for b in bundles:
        rt.assert_clean(cid, b)


def test_state_during_delete(rt, bundle):
    """`state` racing `delete` either sees the container or says it does not exist."""
    for _ in range(3):
        b = bundle(["sleep", "100"])
        cid = rt.create_started(b)
        stop = threading.Event()
        seen = []

        def poll():
            while not stop.is_set():
                seen.append(rt.run("state", cid, check=False))

        pollers = [threading.Thread(target=poll) for _ in range(4)]
        for t in pollers:
            t.start()
        try:
            res = rt.delete(cid, force=True, check=False)
        finally:
            # Let the pollers observe the deleted container too.
            wait_for(lambda: len(seen) > 8, what="state polls")
            stop.set()
            for t in pollers:
                t.join(30)
        assert res.returncode == 0, res
        for r in seen:
            if r.returncode == 0:
                st = json.loads(r.stdout)
                assert st["id"] == cid
                assert st["status"] in STATUSES
            else:
                assert "does not exist" in r.stderr, r
        assert not rt.exists(cid)
        rt.assert_clean(cid, b)


def test_concurrent_deletes(rt, bundle):
    b = bundle(["sleep", "100"])
    cid = rt.create_started(b)
    barrier = threading.Barrier(4)

    def delete():
        barrier.wait()
        return rt.run("delete", "--force", cid, check=False)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: delete(), range(4)))
    for r in results:
        assert r.returncode == 0 or r.stderr.strip(), r
    assert any(r.returncode == 0 for r in results)
    assert not rt.exists(cid)
    rt.assert_clean(cid, b)


def test_list_during_creates(rt, bundle):
    """`list` never fails or prints garbage while containers are being created."""
    bundles = [bundle(["sleep", "100"]) for _ in range(N)]
    stop = threading.Event()
    lists = []

    def poll():
        while not stop.is_set():
            lists.append(rt.run("list", "-f", "json", check=False))

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        with ThreadPoolExecutor(N) as pool:
            ids = list(pool.map(lambda b: rt.create(b), bundles))
    finally:
        stop.set()
        poller.join(30)
    for r in lists:
        assert r.returncode == 0, r
        items = json.loads(r.stdout) or []
        for item in items:
            assert item["id"] in ids
            assert item["status"] in STATUSES
    assert sorted(rt.run("list", "-q").stdout.split()) == sorted(ids)
