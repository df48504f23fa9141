"""Load benchmark: N concurrent headless Chromium visitors through the serving pages, the server
inside a memory cgroup of a given size (as on a 512 MB Heroku dyno), its resident memory sampled
all along. Prints figures and the goals they meet; asserts nothing.

    python bench/bench_load.py                       # 8 visitors, 2 waves, 512 MB, 25 upload rounds
    python bench/bench_load.py --visitors 4 --waves 1 --upload-rounds 0
    python bench/bench_load.py --env MALLOC_ARENA_MAX=  # compare: glibc's default arenas

What it does, in order:

1. starts ``streamlit run app.py`` (as the Procfile does: no training, no test set) inside a new
   memory cgroup limited to ``--memory-mb`` with swap off (cgroup v2 ``memory.max`` +
   ``memory.swap.max``, or v1 ``memory.limit_in_bytes`` + ``memory.memsw.limit_in_bytes``). That
   needs root and a writable cgroup hierarchy; otherwise it says so and only measures;
2. ``--waves`` times: ``--visitors`` browser contexts at once, each opening the CIFAR-100 page
   (uploads ``--home-photos`` photos and waits for every prediction), the classify page
   (``--photos`` photos), the augmentation page and the webcam page; then all leave and the
   server is left alone ``--settle-s`` seconds;
3. one visitor uploads ``--photos`` photos on the classify page and clears them,
   ``--upload-rounds`` times;
4. prints peak and settled RSS per phase, time to result per page (median, p95), failures,
   OOM kills in the cgroup, and each goal of issue 13 with "met" or "NOT met".

RSS is the sum of VmRSS over the server and its child processes (a training run is a child),
sampled every ``--sample-s``. Needs Debian's Chromium and the Python package playwright.
The machine's other load slows the visitors: compare figures from one run, on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

# The serving environment of the Procfile (a test keeps the two in step).
SERVING_ENV = {"MALLOC_ARENA_MAX": "2", "CVPLAY_SHARED": "/nonexistent", "CVPLAY_CIFAR100": ""}
SERVING_ARGS = ["--server.maxUploadSize", "20"]
GOALS = {"peak_rss_mb": 400.0, "second_wave_ratio": 1.15, "upload_growth": 0.10}


# --- memory cgroup ---------------------------------------------------------------------------


class CgroupUnavailable(RuntimeError):
    """No writable memory cgroup here (not root, or no memory controller)."""


@dataclasses.dataclass
class MemoryCgroup:
    """A memory cgroup with a hard limit and no swap, for the processes put into it.

    ``MemoryCgroup.create(limit)`` makes it under the cgroup this process lives in (v2 or v1,
    whichever has the memory controller); :meth:`add` moves a process in (use it from the child
    before ``exec``: see :meth:`preexec`); :meth:`remove` ends its processes and deletes it.
    """

    path: Path
    version: int
    limit_bytes: int

    @staticmethod
    def locate(proc_self_cgroup: str | None = None, mounts: str | None = None) -> tuple[int, Path]:
        """(version, directory of this process's memory cgroup); :class:`CgroupUnavailable` if none."""
        proc_self_cgroup = proc_self_cgroup if proc_self_cgroup is not None else _read("/proc/self/cgroup")
        mounts = mounts if mounts is not None else _read("/proc/self/mounts")
        v1_root = v2_root = None
        for line in mounts.splitlines():
            fields = line.split()
            if len(fields) < 4:
                continue
            if fields[2] == "cgroup2":
                v2_root = Path(fields[1])
            elif fields[2] == "cgroup" and "memory" in fields[3].split(","):
                v1_root = Path(fields[1])
        for line in proc_self_cgroup.splitlines():
            hierarchy, controllers, relative = (line.split(":", 2) + ["", ""])[:3]
            relative = relative.lstrip("/")
            if v1_root is not None and "memory" in controllers.split(","):
                return 1, v1_root / relative
            if v2_root is not None and hierarchy == "0" and controllers == "" and v1_root is None:
                directory = v2_root / relative
                if "memory" in _read(directory / "cgroup.controllers").split():
                    return 2, directory
                # The parent must hand the memory controller down; a v2 root with processes
                # in it cannot, and this script does not move other processes around.
                raise CgroupUnavailable(f"cgroup v2 at {directory} does not offer the memory controller to children")
        raise CgroupUnavailable("no memory cgroup hierarchy is mounted")

    @classmethod
    def create(cls, limit_bytes: int, name: str | None = None) -> "MemoryCgroup":
        if os.geteuid() != 0:
            raise CgroupUnavailable("not root: cannot create a memory cgroup")
        version, parent = cls.locate()
        path = parent / (name or f"cvplay-bench-{os.getpid()}-{int(time.time() * 1000)}")
        try:
            path.mkdir()
        except OSError as error:
            raise CgroupUnavailable(f"cannot create {path}: {error}") from error
        group = cls(path=path, version=version, limit_bytes=int(limit_bytes))
        try:
            group._set_limits()
        except OSError as error:
            with contextlib.suppress(OSError):
                path.rmdir()
            raise CgroupUnavailable(f"cannot set the memory limit in {path}: {error}") from error
        return group

    def _set_limits(self) -> None:
        if self.version == 2:
            (self.path / "memory.max").write_text(str(self.limit_bytes))
            with contextlib.suppress(FileNotFoundError):  # no swap accounting: there is no swap to use
                (self.path / "memory.swap.max").write_text("0")
        else:
            (self.path / "memory.limit_in_bytes").write_text(str(self.limit_bytes))
            memsw = self.path / "memory.memsw.limit_in_bytes"
            if memsw.exists():  # memory + swap = memory: no swap
                memsw.write_text(str(self.limit_bytes))
            with contextlib.suppress(OSError):
                (self.path / "memory.swappiness").write_text("0")

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def preexec(self) -> Callable[[], None]:
        """A ``preexec_fn`` that moves the child into this cgroup before it runs anything."""
        procs = str(self.path / "cgroup.procs")

        def move_self() -> None:
            os.setsid()
            with open(procs, "w") as handle:
                handle.write(str(os.getpid()))

        return move_self

    def pids(self) -> list[int]:
        text = _read(self.path / "cgroup.procs")
        return [int(word) for word in text.split()]

    def usage_bytes(self) -> int | None:
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        text = _read(self.path / name).strip()
        return int(text) if text.isdigit() else None

    def peak_bytes(self) -> int | None:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        text = _read(self.path / name).strip()
        return int(text) if text.isdigit() else None

    def oom_kills(self) -> int:
        """How many processes the kernel killed in this cgroup for want of memory."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        for line in _read(self.path / name).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def remove(self, timeout: float = 10.0) -> None:
        """Kill what is left inside, then delete the cgroup."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids() if self.path.exists() else []
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, 9)
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def _read(path: str | os.PathLike[str]) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


# --- resident memory -------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _read(entry / "stat")
        if not stat:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def rss_bytes(pid: int) -> int:
    """VmRSS of one process (0 when it is gone)."""
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def tree_rss_bytes(pid: int) -> int:
    return sum(rss_bytes(member) for member in process_tree(pid))


@dataclasses.dataclass
class Sample:
    seconds: float
    rss_bytes: int
    phase: str


class RssSampler:
    """Samples the RSS of a process tree every ``interval`` seconds in a thread, with the phase
    label current at that time; ``mark(phase)`` starts a new phase."""

    def __init__(self, pid: int, interval: float = 0.25, measure: Callable[[int], int] = tree_rss_bytes):
        self.pid, self.interval, self.measure = pid, interval, measure
        self.samples: list[Sample] = []
        self.phase = "start"
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> Sample:
        sample = Sample(time.monotonic() - self._started, self.measure(self.pid), self.phase)
        self.samples.append(sample)
        return sample

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def mark(self, phase: str) -> None:
        self.phase = phase
        self.sample()

    def peak(self, phase: str | None = None) -> int:
        values = [s.rss_bytes for s in self.samples if phase is None or s.phase == phase]
        return max(values) if values else 0

    def last(self, phase: str | None = None) -> int:
        values = [s.rss_bytes for s in self.samples if phase is None or s.phase == phase]
        return values[-1] if values else 0


# --- results and goals -----------------------------------------------------------------------


@dataclasses.dataclass
class PageResult:
    wave: str
    visitor: int
    page: str
    seconds: float
    ok: bool
    error: str = ""


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p95 of 8 values is the largest), NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, int(-(-fraction * len(ordered) // 1)))
    return ordered[min(rank, len(ordered)) - 1]


def page_table(results: Sequence[PageResult]) -> list[dict]:
    """Per wave and page: visits, failures, median and p95 seconds to result (answered pages)."""
    rows = []
    keys = sorted({(r.wave, r.page) for r in results}, key=lambda k: (k[0], _PAGE_ORDER.get(k[1], 99), k[1]))
    for wave, page in keys:
        chosen = [r for r in results if r.wave == wave and r.page == page]
        times = [r.seconds for r in chosen if r.ok]
        rows.append({"wave": wave, "page": page, "visits": len(chosen), "failures": sum(not r.ok for r in chosen),
                     "median_s": statistics.median(times) if times else float("nan"),
                     "p95_s": percentile(times, 0.95)})
    return rows


def wave_seconds(results: Sequence[PageResult], wave: str) -> float:
    """How long a wave took: the slowest visitor's total time."""
    totals: dict[int, float] = {}
    for r in results:
        if r.wave == wave:
            totals[r.visitor] = totals.get(r.visitor, 0.0) + r.seconds
    return max(totals.values()) if totals else float("nan")


def check_goals(*, results: Sequence[PageResult], peak_rss: int, wave_times: Sequence[float],
                upload_rss: Sequence[int], oom_kills: int, server_alive: bool) -> list[tuple[str, bool, str]]:
    """Issue 13's goals as (goal, met, figure); the figures the run measured decide."""
    mb = 2**20
    failures = [r for r in results if not r.ok]
    goals = [("every page answered", not failures and bool(results) and server_alive and oom_kills == 0,
              f"{len(results) - len(failures)}/{len(results)} pages, {oom_kills} OOM kills, server "
              + ("alive" if server_alive else "DEAD")),
             (f"peak RSS < {GOALS['peak_rss_mb']:.0f} MB", peak_rss < GOALS["peak_rss_mb"] * mb, f"{peak_rss / mb:.0f} MB")]
    if len(wave_times) >= 2:
        ratio = wave_times[-1] / wave_times[0]
        goals.append((f"second wave within {GOALS['second_wave_ratio'] - 1:.0%} of the first",
                      ratio <= GOALS["second_wave_ratio"],
                      f"{wave_times[0]:.1f} s then {wave_times[-1]:.1f} s: ratio {ratio:.2f}"))
    if len(upload_rss) >= 2 and upload_rss[0] > 0:
        growth = upload_rss[-1] / upload_rss[0] - 1
        goals.append((f"{len(upload_rss)} upload rounds grow RSS < {GOALS['upload_growth']:.0%}",
                      growth < GOALS["upload_growth"],
                      f"{upload_rss[0] / mb:.0f} -> {upload_rss[-1] / mb:.0f} MB: {growth:+.1%}"))
    return goals


# --- the visitors ----------------------------------------------------------------------------

_PAGE_ORDER = {"cifar100": 0, "classify": 1, "augment": 2, "webcam": 3, "upload-round": 4}
EXCEPTION = '[data-testid="stException"]'


def make_photos(directory: Path, count: int, seed: int, size=(640, 480)) -> list[Path]:
    """``count`` distinct JPEG photos (smooth colour fields with noise, like a camera's)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        base = rng.integers(0, 255, (6, 8, 3)).astype(np.uint8)
        image = Image.fromarray(base).resize(size, Image.BICUBIC)
        noisy = np.clip(np.asarray(image, np.int16) + rng.integers(-12, 12, (size[1], size[0], 3)), 0, 255)
        path = directory / f"photo-{seed}-{i}.jpg"
        Image.fromarray(noisy.astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


async def _wait_ready(page, timeout_ms: int) -> None:
    await page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    await page.wait_for_function(
        """() => { const app = document.querySelector('[data-testid="stApp"]');
                   return app && app.getAttribute('data-test-script-state') !== 'running'
                       && document.querySelector('[data-testid="stMainBlockContainer"]'); }""",
        timeout=timeout_ms)


async def _results_shown(page, before: int, count: int, timeout_ms: int) -> None:
    """Wait until ``count`` more result headings (### label per photo) are on the page."""
    await page.wait_for_function(
        "([before, count]) => document.querySelectorAll('[data-testid=\"stMain\"] h3').length >= before + count",
        arg=[before, count], timeout=timeout_ms)


async def _upload(page, photos: Sequence[Path], timeout_ms: int) -> None:
    before = await page.locator('[data-testid="stMain"] h3').count()
    await page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files([str(p) for p in photos])
    await _results_shown(page, before, len(photos), timeout_ms)


async def visit(page, base_url: str, name: str, photos: Sequence[Path], home_photos: Sequence[Path],
                timeout_ms: int) -> None:
    """Open one page as a visitor would and wait for its result; raises when it does not come."""
    await page.goto(f"{base_url}/{name}", wait_until="domcontentloaded", timeout=timeout_ms)
    await _wait_ready(page, timeout_ms)
    if name == "cifar100":
        await page.locator("h1", has_text="CIFAR-100").wait_for(timeout=timeout_ms)
        await _upload(page, home_photos, timeout_ms)
    elif name == "classify":
        await page.locator("h1", has_text="Classify").wait_for(timeout=timeout_ms)
        await _upload(page, photos, timeout_ms)
    elif name == "augment":
        await page.locator("h1").first.wait_for(timeout=timeout_ms)
        await page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stImage\"]').length >= 2",
                                     timeout=timeout_ms)
    else:
        await page.locator("h1").first.wait_for(timeout=timeout_ms)
    await _wait_ready(page, timeout_ms)
    if await page.locator(EXCEPTION).count():
        raise RuntimeError("exception box: " + (await page.locator(EXCEPTION).first.inner_text())[:200])


async def one_visitor(browser, base_url: str, wave: str, visitor: int, pages: Sequence[str], photos, home_photos,
                      timeout_ms: int) -> list[PageResult]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(timeout_ms)  # a loaded server is slow, not failed
    results = []
    try:
        page = await context.new_page()
        for name in pages:
            started = time.perf_counter()
            try:
                await visit(page, base_url, name, photos, home_photos, timeout_ms)
                results.append(PageResult(wave, visitor, name, time.perf_counter() - started, True))
            except Exception as error:  # noqa: BLE001 - a failed page is a figure, not a crash
                results.append(PageResult(wave, visitor, name, time.perf_counter() - started, False,
                                          f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"))
    finally:
        await context.close()  # the visitor leaves: the websocket closes, the session ends
    return results


async def run_wave(browser, base_url: str, wave: str, visitors: int, pages: Sequence[str], photo_sets, home_sets,
                   timeout_ms: int) -> list[PageResult]:
    groups = await asyncio.gather(*[
        one_visitor(browser, base_url, wave, i, pages, photo_sets[i % len(photo_sets)], home_sets[i % len(home_sets)],
                    timeout_ms) for i in range(visitors)])
    return [result for group in groups for result in group]


async def upload_rounds(browser, base_url: str, rounds: int, photo_sets: Sequence[Sequence[Path]], sampler: RssSampler,
                        timeout_ms: int) -> tuple[list[PageResult], list[int]]:
    """One visitor: upload new photos on the classify page, wait for the results, clear them;
    RSS after each round. (Each round has its own files: a browser does not re-send a file
    input's unchanged selection.)"""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(timeout_ms)
    results, rss = [], []
    try:
        page = await context.new_page()
        await page.goto(f"{base_url}/classify", wait_until="domcontentloaded", timeout=timeout_ms)
        await _wait_ready(page, timeout_ms)
        for number in range(rounds):
            started = time.perf_counter()
            try:
                await _upload(page, photo_sets[number % len(photo_sets)], timeout_ms)
                delete = page.locator('[data-testid="stFileChipDeleteBtn"] button, '
                                      '[data-testid="stFileUploaderDeleteBtn"] button')  # Streamlit 1.67, older
                while await delete.count():
                    await delete.first.click()
                    await page.wait_for_timeout(200)
                await page.wait_for_function(
                    "() => document.querySelectorAll('[data-testid=\"stMain\"] h3').length === 0", timeout=timeout_ms)
                await _wait_ready(page, timeout_ms)
                results.append(PageResult("uploads", 0, "upload-round", time.perf_counter() - started, True))
            except Exception as error:  # noqa: BLE001
                results.append(PageResult("uploads", 0, "upload-round", time.perf_counter() - started, False,
                                          f"round {number + 1}: {type(error).__name__}: {str(error).splitlines()[0][:160]}"))
            await asyncio.sleep(0.5)
            rss.append(sampler.sample().rss_bytes)
            if number in (0, rounds - 1) or (number + 1) % 5 == 0 or not results[-1].ok:
                print(f"  round {number + 1}: {'ok' if results[-1].ok else results[-1].error} in "
                      f"{results[-1].seconds:.1f} s, RSS {rss[-1] / 2**20:.0f} MB", flush=True)
    finally:
        await context.close()
    return results, rss


# --- the server ------------------------------------------------------------------------------


@contextlib.contextmanager
def server_in_cgroup(script: str, *, memory_mb: int | None, env: dict[str, str | None], extra_args: Sequence[str] = (),
                     log: Callable[[str], None] = print) -> Iterator[tuple[object, MemoryCgroup | None]]:
    """``streamlit run SCRIPT`` on 127.0.0.1:free port, inside a fresh memory cgroup when it can;
    yields (server, cgroup or None) and stops and removes both afterwards."""
    from e2e_support import StreamlitServer, _wait_until_serving, free_port, stop_process

    group = None
    if memory_mb:
        try:
            group = MemoryCgroup.create(memory_mb * 2**20)
            log(f"server runs in cgroup v{group.version} {group.path} limited to {memory_mb} MB, no swap")
        except CgroupUnavailable as error:
            log(f"NO memory limit (only measuring): {error}")
    port = free_port()
    log_file = tempfile.NamedTemporaryFile(prefix="cvplay-load-", suffix=".log", delete=False)
    command = [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true",
               "--server.address", "127.0.0.1", "--server.port", str(port), *extra_args]
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for key, value in env.items():  # None: unset
        if value is None:
            child_env.pop(key, None)
        else:
            child_env[key] = value
    process = subprocess.Popen(command, cwd=ROOT, env=child_env, stdout=log_file, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL,
                               preexec_fn=group.preexec() if group else os.setsid)
    server = StreamlitServer(process=process, port=port, log_path=Path(log_file.name))
    log_file.close()
    try:
        _wait_until_serving(server, 120)
        yield server, group
    finally:
        stop_process(process)
        if group is not None:
            group.remove()


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", default="app.py", help="the Streamlit script (default app.py)")
    parser.add_argument("--visitors", type=int, default=8)
    parser.add_argument("--waves", type=int, default=2)
    parser.add_argument("--pages", default="cifar100,classify,augment,webcam")
    parser.add_argument("--photos", type=int, default=5, help="photos per visitor on the classify page")
    parser.add_argument("--home-photos", type=int, default=3, help="photos per visitor on the CIFAR-100 page")
    parser.add_argument("--upload-rounds", type=int, default=25)
    parser.add_argument("--memory-mb", type=int, default=512, help="cgroup limit; 0: no cgroup")
    parser.add_argument("--settle-s", type=float, default=90.0, help="quiet time after each wave")
    parser.add_argument("--sample-s", type=float, default=0.25)
    parser.add_argument("--timeout-s", type=float, default=180.0, help="per page")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="server environment on top of the Procfile's (KEY= unsets KEY)")
    parser.add_argument("--server-arg", action="append", default=[], help="extra `streamlit run` option")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    return parser.parse_args(argv)


async def drive(args, base_url: str, sampler: RssSampler, photo_dir: Path) -> dict:
    from playwright.async_api import async_playwright

    from e2e_support import CHROMIUM, CHROMIUM_ARGS

    pages = [p for p in args.pages.split(",") if p]
    timeout_ms = int(args.timeout_s * 1000)
    photo_sets = [make_photos(photo_dir, args.photos, seed) for seed in range(min(args.visitors, 4))]
    home_sets = [make_photos(photo_dir, args.home_photos, 100 + seed) for seed in range(min(args.visitors, 4))]
    results: list[PageResult] = []
    wave_times, settled = [], []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for number in range(1, args.waves + 1):
                wave = f"wave {number}"
                sampler.mark(wave)
                print(f"{wave}: {args.visitors} visitors through {', '.join(pages)}", flush=True)
                wave_results = await run_wave(browser, base_url, wave, args.visitors, pages, photo_sets, home_sets,
                                              timeout_ms)
                results += wave_results
                wave_times.append(wave_seconds(wave_results, wave))
                failed = sum(not r.ok for r in wave_results)
                print(f"  {wave} took {wave_times[-1]:.1f} s, {failed} failed page(s), peak RSS "
                      f"{sampler.peak(wave) / 2**20:.0f} MB; settling {args.settle_s:.0f} s", flush=True)
                sampler.mark(f"after {wave}")
                await asyncio.sleep(args.settle_s)
                settled.append(sampler.sample().rss_bytes)
            upload_rss: list[int] = []
            if args.upload_rounds:
                sampler.mark("uploads")
                print(f"upload rounds: {args.upload_rounds} x {args.photos} photos on the classify page", flush=True)
                round_sets = [make_photos(photo_dir, args.photos, 1000 + number) for number in range(args.upload_rounds)]
                upload_results, upload_rss = await upload_rounds(browser, base_url, args.upload_rounds,
                                                                 round_sets, sampler, timeout_ms)
                results += upload_results
                sampler.mark("after uploads")
        finally:
            await browser.close()
    return {"results": results, "wave_times": wave_times, "settled": settled, "upload_rss": upload_rss}


def report(args, sampler: RssSampler, figures: dict, group: MemoryCgroup | None, server_alive: bool) -> dict:
    mb = 2**20
    results: list[PageResult] = figures["results"]
    print()
    print(f"{'phase':<22} {'peak RSS':>9} {'last RSS':>9}")
    phases = list(dict.fromkeys(s.phase for s in sampler.samples))
    for phase in phases:
        print(f"{phase:<22} {sampler.peak(phase) / mb:8.0f}M {sampler.last(phase) / mb:8.0f}M")
    for number, value in enumerate(figures["settled"], 1):
        print(f"settled {args.settle_s:.0f} s after wave {number}: {value / mb:.0f} MB")
    print()
    print(f"{'wave':<8} {'page':<13} {'visits':>6} {'failed':>6} {'median s':>9} {'p95 s':>7}")
    rows = page_table(results)
    for row in rows:
        print(f"{row['wave']:<8} {row['page']:<13} {row['visits']:>6} {row['failures']:>6} "
              f"{row['median_s']:9.2f} {row['p95_s']:7.2f}")
    for number, seconds in enumerate(figures["wave_times"], 1):
        print(f"wave {number} took {seconds:.1f} s (slowest visitor)")
    for failure in [r for r in results if not r.ok][:20]:
        print(f"FAILED {failure.wave} visitor {failure.visitor} {failure.page}: {failure.error}")
    oom = group.oom_kills() if group else 0
    if group is not None:
        print(f"cgroup: limit {group.limit_bytes / mb:.0f} MB, OOM kills {oom}")
    peak = sampler.peak()
    goals = check_goals(results=results, peak_rss=peak, wave_times=figures["wave_times"],
                        upload_rss=figures["upload_rss"], oom_kills=oom, server_alive=server_alive)
    print()
    for goal, met, figure in goals:
        print(f"{'met    ' if met else 'NOT met'}  {goal}: {figure}")
    return {"peak_rss_mb": peak / mb, "settled_mb": [v / mb for v in figures["settled"]],
            "wave_seconds": figures["wave_times"], "upload_rss_mb": [v / mb for v in figures["upload_rss"]],
            "pages": rows, "failures": [dataclasses.asdict(r) for r in results if not r.ok], "oom_kills": oom,
            "cgroup": str(group.path) if group else None, "goals": [{"goal": g, "met": m, "figure": f} for g, m, f in goals]}


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(f"stopped by signal {signum}")  # runs the clean-up: server, cgroup, browser


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    env: dict[str, str | None] = dict(SERVING_ENV)
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value or None
    print(f"server environment: {' '.join(f'{k}={v}' if v is not None else f'(no {k})' for k, v in env.items())}  "
          f"({os.cpu_count()} CPUs; other load on the machine slows the visitors)")
    with tempfile.TemporaryDirectory(prefix="cvplay-load-") as photo_dir, \
            server_in_cgroup(args.app, memory_mb=args.memory_mb, env=env,
                             extra_args=[*SERVING_ARGS, *args.server_arg]) as (server, group):
        with RssSampler(server.process.pid, interval=args.sample_s) as sampler:
            sampler.mark("idle")
            time.sleep(2)
            figures = asyncio.run(drive(args, server.url, sampler, Path(photo_dir)))
            alive = server.process.poll() is None
        summary = report(args, sampler, figures, group, alive)
        if not alive:
            print(server.log()[-3000:])
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
