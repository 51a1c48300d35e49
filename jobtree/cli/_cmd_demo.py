"""jobtree demo: a whole render farm on this machine in under a minute.

Makes a queue (a new temporary directory unless one is given), submits an animation with
:func:`jobtree.procs.submitAnimation`, starts the worker daemon on it (``python -m jobtree.worker
QUEUE --burst``), shows the jobs live while they run, and says where the movie is. With Blender
and ffmpeg installed it renders a small scene it builds with Blender's Python (Cycles on the CPU)
and encodes an .mp4; otherwise it uses jobtree's own renderer (``demo-render``, numpy and Pillow)
and makes an animated .gif (an .mp4 when ffmpeg is there).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import click
from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .. import _layout as L
from .._interp import pathWithoutThisPython
from ..errors import QueueNotFound
from ..handle import JobHandle
from ..queue import JobQueue, createJobQueue
from ..state import JobState
from ..worker import ALLOW_ROOT_ENV, refuseRoot
from ._address import shortId
from ._app import CliError, Exit, app, jsonOption, printJson
from ._cmd_submit import procsFunction
from ._demo_scene import sceneScript
from ._render import bar, counts, duration, stateText

LABEL = "jobtree demo"
POLL_SECONDS = 0.2
"""How often the progress display reads the jobs."""
FRAME_RATE = 12
"""The movie's frames per second: the default 24 frames make a two-second loop."""
SCENE_TIMEOUT = 120.0
STOP_TIMEOUT = 40.0
"""Seconds to wait for the worker daemon after asking it to stop now (it kills its workers after
30 s itself)."""
STATUS_MAX = 60
MAX_ROWS = 16
"""Jobs shown one per line on a terminal; a longer animation shows those that are running."""
LOG_TAIL = 15
FINAL = tuple(state.value for state in (JobState.DONE, JobState.FAILED, JobState.CANCELLED))
"""The states (JobView.state) in which a job has ended."""


# -- what the demo does ----------------------------------------------------------------------------


@dataclass
class Plan:
    """Where everything goes and what renders it."""

    renderer: str
    """"blender" or "python"."""
    blender: str | None
    ffmpeg: str | None
    queue: JobQueue
    workDir: str
    """Holds the scene, the frames, the movie and the workers' log."""
    createdQueue: bool
    frames: int
    chunk: int
    workers: int

    @property
    def scene(self) -> str | None:
        return os.path.join(self.workDir, "demo.blend") if self.renderer == "blender" else None

    @property
    def framesDir(self) -> str:
        return os.path.join(self.workDir, "frames")

    @property
    def pattern(self) -> str:
        return os.path.join(self.framesDir, "frame_####.png")

    def frameFile(self, frame: int) -> str:
        return os.path.join(self.framesDir, f"frame_{frame:04d}.png")

    @property
    def movie(self) -> str:
        return os.path.join(self.workDir, "demo.mp4" if self.ffmpeg else "demo.gif")

    @property
    def workerLog(self) -> str:
        return os.path.join(self.workDir, "worker.log")

    def describe(self) -> str:
        jobs = -(-self.frames // self.chunk)
        what = "Blender (Cycles, CPU)" if self.renderer == "blender" else "jobtree's own renderer"
        encoder = "ffmpeg" if self.ffmpeg else "Pillow"
        return (
            f"{self.frames} frames rendered by {what} in {jobs} job{'s' if jobs != 1 else ''} "
            f"of {self.chunk} frame{'s' if self.chunk != 1 else ''}, then encoded with {encoder}; "
            f"{self.workers} worker{'s' if self.workers != 1 else ''}"
        )


def _tool(name: str) -> str | None:
    """The program the render procedures will run: $JOBTREE_<NAME>, else *name* on the PATH."""
    override = os.environ.get(f"JOBTREE_{name.upper()}")
    return shutil.which(override) if override else shutil.which(name)


def _chooseRenderer(choice: str) -> tuple[str, str | None, str | None]:
    blender, ffmpeg = _tool("blender"), _tool("ffmpeg")
    if choice == "auto":
        return ("blender" if blender and ffmpeg else "python"), blender, ffmpeg
    if choice == "blender" and blender is None:
        raise CliError(
            "--renderer blender: Blender is not installed here (Debian: apt-get install blender; "
            "or set $JOBTREE_BLENDER to its path); --renderer python needs nothing but jobtree",
            Exit.UNAVAILABLE,
        )
    return choice, blender, ffmpeg


def _prepareQueue(path: str | None) -> tuple[JobQueue, str, bool]:
    """(queue, work directory, whether this run created the queue)."""
    if path is None:
        base = tempfile.mkdtemp(prefix="jobtree-demo-")
        return createJobQueue(os.path.join(base, "queue")), base, True
    location = os.path.abspath(os.path.expanduser(path))
    workDir = location.rstrip(os.sep) + "-demo"
    try:
        return JobQueue(location), workDir, False
    except (QueueNotFound, NotADirectoryError):
        pass
    except FileNotFoundError:
        pass
    if os.path.exists(location) and not os.path.isdir(location):
        raise CliError(
            f"{location} exists and is not a directory; give a new directory or a queue",
            Exit.REFUSED,
        )
    if os.path.isdir(location) and os.listdir(location):
        raise CliError(
            f"{location} is a directory with files in it and not a jobtree queue; the demo "
            "makes its queue in a new or empty directory, or uses an existing queue",
            Exit.REFUSED,
        )
    return createJobQueue(location), workDir, True


def _buildScene(plan: Plan) -> None:
    assert plan.blender is not None
    assert plan.scene is not None
    argv = [plan.blender, "-b", "--factory-startup", "--python-expr", sceneScript(FRAME_RATE), "--"]
    argv += [plan.scene, str(plan.frames)]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=SCENE_TIMEOUT,
            check=False,
            env=dict(os.environ, PATH=pathWithoutThisPython()),
        )
    except subprocess.TimeoutExpired:
        raise CliError(
            f"Blender ({plan.blender}) did not build the demo scene within {SCENE_TIMEOUT:.0f} s; "
            "try --renderer python",
            Exit.FAILED,
        ) from None
    if done.returncode != 0 or not os.path.isfile(plan.scene):
        lines = (done.stdout + done.stderr).strip().splitlines()[-LOG_TAIL:]
        raise CliError(
            f"Blender ({plan.blender}) could not build the demo scene {plan.scene} (exit status "
            f"{done.returncode}); its last output:\n" + "\n".join(lines) + "\n"
            "try --renderer python",
            Exit.FAILED,
        )


def _submit(plan: Plan) -> JobHandle:
    submitAnimation = procsFunction("submitAnimation")
    os.makedirs(plan.framesDir, exist_ok=True)
    handle: JobHandle = submitAnimation(
        plan.queue,
        plan.scene,
        f"1-{plan.frames}",
        plan.chunk,
        plan.pattern,
        renderer="blender" if plan.renderer == "blender" else "demo",
        movie=plan.movie,
        frameRate=FRAME_RATE,
        label=LABEL,
    )
    return handle


# -- the workers -----------------------------------------------------------------------------------


@contextmanager
def _workers(plan: Plan, log: IO[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """The worker daemon on the demo's queue, stopped at once (jobs given back) when the block
    is left early, by Ctrl-C or an error."""
    argv = [sys.executable, "-m", "jobtree.worker", str(plan.queue.location), "--burst"]
    argv += ["--workers", str(plan.workers), "--log-level", "WARNING"]
    env = dict(os.environ)
    if plan.createdQueue:
        # The queue is this run's own, made a moment ago: only the demo's jobs are in it.
        env[ALLOW_ROOT_ENV] = "1"
    # Its own session: Ctrl-C reaches the demo only, which then stops the daemon (the daemon
    # would take a Ctrl-C as "finish the running jobs first", which can take a while).
    proc = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            _stopNow(proc)


def _stopNow(proc: subprocess.Popen[bytes]) -> None:
    # Two SIGTERMs: the daemon's "stop the running jobs now and give them back".
    for _ in range(2):
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            break
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _finishWorkers(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Let a burst daemon whose work is done exit by itself; stop it if it keeps working (a
    queue given by the user may hold other jobs)."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _stopNow(proc)


# -- watching the jobs -----------------------------------------------------------------------------


@dataclass
class JobView:
    label: str
    address: str
    state: str
    progress: float
    status: str
    startTime: float | None
    endTime: float | None
    error: str | None


@dataclass
class TreeView:
    root: JobView
    children: list[JobView] = field(default_factory=list)

    @property
    def jobs(self) -> list[JobView]:
        return [*self.children, self.root]

    @property
    def progress(self) -> float:
        jobs = self.jobs
        return sum(j.progress for j in jobs) / len(jobs)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for j in self.jobs:
            out[j.state] = out.get(j.state, 0) + 1
        return out

    def failed(self) -> list[JobView]:
        return [j for j in self.jobs if j.state in ("failed", "cancelled")]


def _view(h: JobHandle) -> JobView:
    state = h.state
    return JobView(
        label=h.label or h.path,
        address=shortId(h.rootId) + ("" if h.path == L.ROOT_PATH else ":" + h.path[5:]),
        state=state.value,
        progress=100.0 if state is JobState.DONE else h.progress,
        status=h.statusLine,
        startTime=h.startTime,
        endTime=h.endTime,
        error=h.error,
    )


def readTree(root: JobHandle, rootLabel: str | None = None) -> TreeView:
    """The jobs of the demo's tree, read through the jobtree API."""
    tree = TreeView(_view(root), [_view(c) for c in root.listSubJobs()])
    if rootLabel:
        tree.root.label = rootLabel
    return tree


def _render(tree: TreeView, elapsed: float) -> RenderableType:
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True, overflow="ellipsis", max_width=STATUS_MAX)
    overall = counts(tree.counts())
    overall.append(f"  {duration(elapsed)}", style="dim")
    table.add_row(Text("all jobs", style="bold"), Text(""), bar(tree.progress, 20), overall)
    shown = tree.jobs
    if len(shown) > MAX_ROWS:
        # A long animation: the jobs that are running or have failed, and the encode.
        busy = [j for j in tree.children if j.state in ("running", "failed", "cancelled")]
        shown = [*busy[: MAX_ROWS - 1], tree.root]
    for j in shown:
        table.add_row(
            stateText(j.state), Text(j.label), bar(j.progress, 20), Text(_status(j), style="dim")
        )
    if len(shown) < len(tree.jobs):
        table.add_row(Text(""), Text(f"(and {len(tree.jobs) - len(shown)} more)", style="dim"))
    return table


def _status(j: JobView) -> str:
    if j.state == "done":
        return _took(j)
    if j.state in ("failed", "cancelled", "blocked"):
        return (j.error or "").split("\n")[0]
    if j.state == "waiting":
        return "waits for its sub-jobs"
    if j.state == "ready":
        return "waits for a free worker"
    return j.status


def _took(j: JobView) -> str:
    if j.startTime is None or j.endTime is None:
        return ""
    return f"took {duration(j.endTime - j.startTime)}"


class Reporter:
    """Shows the jobs as they run: live bars on a terminal, one line per start and end when the
    output goes to a file or a pipe, nothing with --json."""

    def __init__(self, plan: Plan, console: Console, quiet: bool) -> None:
        self.plan = plan
        self.console = console
        self.quiet = quiet
        self.live: Live | None = None
        self.printed: set[tuple[str, str]] = set()
        """(job address, "running" or its final state) lines already printed."""
        self.t0 = time.monotonic()
        self.wallT0 = time.time()
        """The same moment by the clock the workers stamp start and end times with."""

    def __enter__(self) -> Reporter:
        if not self.quiet and self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=8, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def update(self, tree: TreeView) -> None:
        if self.quiet:
            return
        if self.live is not None:
            self.live.update(_render(tree, time.monotonic() - self.t0))
            return
        # A short job can start and end between two looks at the tree: its start is then read
        # from its startTime, so every job that ran gets both lines, in the order they happened.
        events: list[tuple[float, int, str, JobView]] = []
        for j in tree.jobs:
            ran = j.startTime is not None and j.state in ("running", *FINAL)
            if ran and (j.address, "running") not in self.printed:
                events.append((j.startTime or 0.0, 0, "running", j))
            if j.state in FINAL and (j.address, j.state) not in self.printed:
                events.append((j.endTime or time.time(), 1, j.state, j))
        for when, _, state, j in sorted(events, key=lambda e: e[:2]):
            self.printed.add((j.address, state))
            self._line(j, state, when)

    def _line(self, j: JobView, state: str, when: float) -> None:
        elapsed = duration(max(0.0, when - self.wallT0))
        detail = {"done": _took(j), "failed": j.error or ""}.get(state, "")
        text = f"  {elapsed:>6}  {state:<9} {j.label}" + (f"  ({detail})" if detail else "")
        self.console.print(text.splitlines()[0], markup=False, highlight=False)


def _watch(
    plan: Plan, root: JobHandle, proc: subprocess.Popen[bytes], reporter: Reporter
) -> TreeView:
    """Poll the tree until the root is finished, a job has failed, or the daemon exits."""
    rootLabel = f"encode {os.path.basename(plan.movie)}"
    while True:
        tree = readTree(root, rootLabel)
        reporter.update(tree)
        if tree.root.state in ("done", "failed", "cancelled") or tree.failed():
            return tree
        if proc.poll() is not None:
            # The daemon is gone: read once more, the root may have finished just before.
            tree = readTree(root, rootLabel)
            reporter.update(tree)
            return tree
        time.sleep(POLL_SECONDS)


def _logTail(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().strip().splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-LOG_TAIL:])


# -- the command -----------------------------------------------------------------------------------


@click.command()
@click.argument("queue", required=False, type=click.Path(file_okay=True))
@click.option(
    "-w",
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Worker processes.",
)
@click.option(
    "-f",
    "--frames",
    type=click.IntRange(1, 10_000),
    default=24,
    show_default=True,
    help="Frames of the animation.",
)
@click.option(
    "-c",
    "--chunk",
    type=click.IntRange(min=1),
    help="Frames per render job (default: about three jobs per worker).",
)
@click.option(
    "--renderer",
    type=click.Choice(["auto", "blender", "python"]),
    default="auto",
    show_default=True,
    help="blender (with Blender, and ffmpeg if installed), python (jobtree's own renderer), or "
    "auto: blender when Blender and ffmpeg are both installed.",
)
@jsonOption
def demo(
    queue: str | None,
    workers: int,
    frames: int,
    chunk: int | None,
    renderer: str,
    asJson: bool,
) -> None:
    """Run a small render farm on this machine: make a queue (in a new temporary directory
    unless QUEUE is given), submit an animation, start workers, show the jobs as they run, and
    say where the movie is. Renders with Blender when Blender and ffmpeg are installed, and with
    jobtree's own Python renderer otherwise. The queue and the files are kept afterwards."""
    t0 = time.monotonic()
    kind, blender, ffmpeg = _chooseRenderer(renderer)
    q, workDir, created = _prepareQueue(queue)
    refusal = None if created else refuseRoot()
    if refusal is not None:
        # Checked before anything is submitted; a queue the demo made itself holds only its jobs.
        raise CliError(
            f"{refusal.removeprefix('jobtree worker: ')} (Or run the demo without QUEUE.)",
            Exit.REFUSED,
        )
    os.makedirs(workDir, exist_ok=True)
    plan = Plan(
        renderer=kind,
        blender=blender,
        ffmpeg=ffmpeg,
        queue=q,
        workDir=workDir,
        createdQueue=created,
        frames=frames,
        chunk=chunk or max(1, -(-frames // (3 * workers))),
        workers=workers,
    )
    console = app().console()

    def say(text: str) -> None:
        if not asJson:
            console.print(text, highlight=False)

    say(f"[bold]jobtree demo[/]: {plan.describe()}")
    say(f"  queue  {q.location}")
    if plan.renderer == "blender":
        say("  building the scene with Blender's Python ...")
        _buildScene(plan)
    root = _submit(plan)
    say(
        f"  submitted {shortId(root.rootId)} ({1 + len(root.listSubJobs())} jobs); starting workers"
    )
    interrupted = False
    with (
        open(plan.workerLog, "ab") as log,
        _workers(plan, log) as proc,
        Reporter(plan, console, asJson) as reporter,
    ):
        try:
            tree = _watch(plan, root, proc, reporter)
        except KeyboardInterrupt:
            interrupted = True
        else:
            if tree.root.state == "done":
                _finishWorkers(proc)
    seconds = time.monotonic() - t0
    if interrupted:
        raise CliError(
            f"interrupted: the workers stopped and gave their jobs back; the queue is at "
            f"{q.location} (carry on with: jobtree worker {q.location})",
            Exit.INTERRUPTED,
        )
    _finish(plan, root, tree, proc, seconds, asJson)


def _finish(
    plan: Plan,
    root: JobHandle,
    tree: TreeView,
    proc: subprocess.Popen[bytes],
    seconds: float,
    asJson: bool,
) -> None:
    failed = tree.failed()
    ok = tree.root.state == "done"
    files = [plan.frameFile(f) for f in range(1, plan.frames + 1)]
    if asJson:
        printJson(
            {
                "queue": plan.queue.location,
                "id": shortId(root.rootId),
                "rootId": root.rootId,
                "state": tree.root.state,
                "renderer": plan.renderer,
                "workers": plan.workers,
                "seconds": round(seconds, 2),
                "movie": plan.movie if ok else None,
                "frames": [f for f in files if os.path.isfile(f)],
                "scene": plan.scene,
                "workerLog": plan.workerLog,
                "workerExit": proc.returncode,
                "failed": [{"id": j.address, "label": j.label, "error": j.error} for j in failed],
            }
        )
        if not ok:
            if not failed:
                click.echo(_daemonGone(plan, proc), err=True)
            raise click.exceptions.Exit(int(Exit.FAILED))
        return
    console = app().console()
    q = plan.queue.location
    if not ok:
        err = app().console(stderr=True)
        for j in failed:
            err.print(f"{j.label} ({j.address}) {j.state}:", markup=False, highlight=False)
            err.print("  " + (j.error or "").replace("\n", "\n  "), markup=False, highlight=False)
            err.print(f"  its output: jobtree logs -q {q} {j.address}", markup=False)
        if not failed:
            err.print(_daemonGone(plan, proc), markup=False, highlight=False)
        what = f"{failed[0].label} failed" if failed else f"the root is {tree.root.state}"
        raise CliError(f"the demo animation did not finish: {what}", Exit.FAILED)
    out = [
        f"done in {duration(seconds)}: {plan.frames} frames rendered and encoded by "
        f"{plan.workers} worker{'s' if plan.workers != 1 else ''}",
        f"  movie   {plan.movie}",
        f"  frames  {files[0]}" + (f" ... {os.path.basename(files[-1])}" if len(files) > 1 else ""),
    ]
    if plan.scene:
        out.append(f"  scene   {plan.scene}")
    out += [
        f"  queue   {q}",
        "",
        f"Watch the queue in the monitor:  jobtree gui {q}",
        f"or in the terminal:              jobtree tree -q {q}",
    ]
    if not _hasQt():
        # The monitor is an extra; say how to get it rather than let the suggestion fail.
        out.append("(the monitor needs PySide6 first:  pip install 'jobtree-farm[gui]')")
    for line in out:
        console.print(line, markup=False, highlight=False)


def _hasQt() -> bool:
    try:
        return importlib.util.find_spec("PySide6") is not None
    except (ImportError, ValueError):
        return False


def _daemonGone(plan: Plan, proc: subprocess.Popen[bytes]) -> str:
    return (
        f"the worker daemon {_exitText(proc.returncode)} before the animation was done "
        f"(its log: {plan.workerLog}):\n{_logTail(plan.workerLog)}"
    )


def _exitText(code: int | None) -> str:
    if code is None:
        return "was still running"
    if code < 0:
        return f"was killed by signal {-code}"
    return f"exited with status {code}"
