"""The load benchmark's pieces (bench/bench_load.py): finding and using a memory cgroup (set up,
limit enforced, torn down), RSS sampling of a process tree, the result table and goal checks,
and the whole benchmark end to end on a tiny app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import bench_load  # noqa: E402
from bench_load import CgroupUnavailable, MemoryCgroup, PageResult  # noqa: E402

MB = 2**20
HOLD = "import sys, time; block = bytearray({n}); block[::4096] = b'x' * len(block[::4096]); print('ready', flush=True); time.sleep(60)"

V1_MOUNTS = "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
V1_SELF = "9:name=systemd:/\n4:memory:/process_api/abc\n0::/\n"


def test_locate_finds_the_v1_memory_hierarchy():
    version, path = MemoryCgroup.locate(V1_SELF, V1_MOUNTS)
    assert version == 1 and path == Path("/sys/fs/cgroup/memory/process_api/abc")


def test_locate_finds_v2_when_the_memory_controller_is_offered(tmp_path):
    (tmp_path / "user.slice").mkdir()
    (tmp_path / "user.slice" / "cgroup.controllers").write_text("cpu io memory pids\n")
    version, path = MemoryCgroup.locate("0::/user.slice\n", f"cgroup2 {tmp_path} cgroup2 rw 0 0\n")
    assert version == 2 and path == tmp_path / "user.slice"
    (tmp_path / "user.slice" / "cgroup.controllers").write_text("cpu io\n")
    with pytest.raises(CgroupUnavailable, match="memory controller"):
        MemoryCgroup.locate("0::/user.slice\n", f"cgroup2 {tmp_path} cgroup2 rw 0 0\n")


def test_locate_without_any_memory_hierarchy_says_so():
    with pytest.raises(CgroupUnavailable, match="no memory cgroup"):
        MemoryCgroup.locate("1:cpu:/\n", "proc /proc proc rw 0 0\n")


def make_cgroup(limit_mb: int) -> MemoryCgroup:
    try:
        return MemoryCgroup.create(limit_mb * MB)
    except CgroupUnavailable as error:
        pytest.skip(f"no memory cgroup here: {error}")


def test_cgroup_holds_a_small_process_kills_a_big_one_and_is_removed():
    group = make_cgroup(96)
    try:
        assert group.path.is_dir()
        small = subprocess.Popen([sys.executable, "-c", HOLD.format(n=16 * MB)], stdout=subprocess.PIPE, text=True,
                                 preexec_fn=group.preexec())
        assert small.stdout.readline().strip() == "ready"
        assert small.pid in group.pids()
        assert group.usage_bytes() > 16 * MB
        big = subprocess.Popen([sys.executable, "-c", HOLD.format(n=300 * MB)], stdout=subprocess.PIPE, text=True,
                               preexec_fn=group.preexec())
        assert big.wait(timeout=60) == -9  # the kernel's OOM killer: no swap to spill into
        assert group.oom_kills() >= 1
        assert group.peak_bytes() <= 96 * MB
        assert small.poll() is None
    finally:
        group.remove()
    assert not group.path.exists()
    assert small.wait(timeout=10) == -9  # remove() ends what is left inside


def test_rss_sampler_follows_a_process_tree_and_its_phases():
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import subprocess, sys, time
            time.sleep(0.8)
            child = subprocess.Popen([sys.executable, "-c", {HOLD.format(n=120 * MB)!r}], stdout=subprocess.PIPE)
            child.stdout.readline()
            time.sleep(1.5)
            child.kill(); child.wait()
            time.sleep(1.5)
        """)])
    try:
        with bench_load.RssSampler(parent.pid, interval=0.05) as sampler:
            sampler.mark("before")
            time.sleep(0.5)
            sampler.mark("with child")
            parent.wait(timeout=60)
            sampler.mark("after")
        assert sampler.peak("before") < 60 * MB
        assert sampler.peak("with child") > 120 * MB  # the child's memory counts: a training run is a child
        assert sampler.last("after") < 60 * MB
        assert [s.phase for s in sampler.samples][0] == "before"
    finally:
        parent.kill()


def test_percentile_and_page_table():
    assert bench_load.percentile([3, 1, 2], 0.5) == 2
    assert bench_load.percentile(list(range(1, 21)), 0.95) == 19
    assert bench_load.percentile([5.0], 0.95) == 5.0
    results = [PageResult("wave 1", v, "classify", 1.0 + v, True) for v in range(4)]
    results.append(PageResult("wave 1", 4, "classify", 30.0, False, "TimeoutError"))
    results.append(PageResult("wave 1", 0, "cifar100", 2.0, True))
    rows = bench_load.page_table(results)
    assert [row["page"] for row in rows] == ["cifar100", "classify"]
    classify = rows[1]
    assert classify["visits"] == 5 and classify["failures"] == 1
    assert classify["median_s"] == 2.5 and classify["p95_s"] == 4.0  # failed visits have no time to result
    assert bench_load.wave_seconds(results, "wave 1") == 30.0


def test_goals_are_met_or_not_by_the_figures():
    ok = [PageResult("wave 1", 0, "classify", 2.0, True)]
    good = bench_load.check_goals(results=ok, peak_rss=300 * MB, wave_times=[20.0, 22.0],
                                  upload_rss=[250 * MB, 260 * MB], oom_kills=0, server_alive=True)
    assert [met for _, met, _ in good] == [True, True, True, True]
    bad = bench_load.check_goals(results=ok + [PageResult("wave 2", 1, "augment", 9.0, False, "x")],
                                 peak_rss=450 * MB, wave_times=[20.0, 24.0], upload_rss=[250 * MB, 280 * MB],
                                 oom_kills=0, server_alive=True)
    assert [met for _, met, _ in bad] == [False, False, False, False]
    assert "ratio 1.20" in bad[2][2] and "+12.0%" in bad[3][2]
    dead = bench_load.check_goals(results=ok, peak_rss=MB, wave_times=[1.0], upload_rss=[], oom_kills=1,
                                  server_alive=False)
    assert not dead[0][1] and "1 OOM kills" in dead[0][2] and len(dead) == 2


TINY_APP = textwrap.dedent("""
    import streamlit as st

    st.title("Classify your photos")
    uploads = st.file_uploader("photos", accept_multiple_files=True) or []
    for upload in uploads:
        st.markdown(f"### {upload.name}: {len(upload.getvalue())} bytes")
""")


@pytest.mark.browser
@pytest.mark.slow
def test_benchmark_end_to_end_on_a_tiny_app(tmp_path, capsys):
    from e2e_support import require_browser

    require_browser()
    app = tmp_path / "tiny.py"
    app.write_text(TINY_APP)
    out = tmp_path / "figures.json"
    code = bench_load.main(["--app", str(app), "--visitors", "2", "--waves", "2", "--pages", "classify",
                            "--photos", "2", "--upload-rounds", "2", "--settle-s", "0.5", "--timeout-s", "60",
                            "--memory-mb", "512", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    figures = json.loads(out.read_text())
    assert figures["failures"] == [], figures["failures"]
    assert [row["visits"] for row in figures["pages"]] == [2, 2, 2]  # two waves of two, two upload rounds
    assert 30 < figures["peak_rss_mb"] < 400
    assert len(figures["settled_mb"]) == 2 and len(figures["upload_rss_mb"]) == 2
    assert {goal["goal"].split(" ")[0] for goal in figures["goals"]} >= {"every", "peak"}
    assert "median s" in printed and "peak RSS" in printed
    if figures["cgroup"]:
        assert not Path(figures["cgroup"]).exists()  # torn down
        assert "limited to 512 MB" in printed
    else:
        assert "NO memory limit" in printed
