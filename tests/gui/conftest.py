"""GUI tests: offscreen Qt, a private settings file, queues built from tests/gui/guiprocs.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Before anything imports Qt: without a display Qt would abort the whole pytest process.
os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest

GUI_TESTS = Path(__file__).resolve().parent
if str(GUI_TESTS) not in sys.path:
    sys.path.insert(0, str(GUI_TESTS))

pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is not installed (pip install '.[gui]')")
pytest.importorskip("pytestqt", reason="pytest-qt is not installed")

from jobtree.gui._qtcheck import bindingProblem  # noqa: E402

import jobtree  # noqa: E402

BINDING_PROBLEM = bindingProblem()
REPO = GUI_TESTS.parent.parent
IMAGES = REPO / "docs" / "images"


@pytest.fixture(autouse=True)
def _sane_binding() -> None:
    if BINDING_PROBLEM:
        pytest.fail(BINDING_PROBLEM)


@pytest.fixture(autouse=True)
def _private_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBTREE_GUI_SETTINGS", str(tmp_path / "gui-settings.ini"))


@pytest.fixture(scope="session")
def qapp_args() -> list[str]:
    return ["jobtree-gui-tests"]


@pytest.fixture(scope="session", autouse=True)
def _fusion(qapp: Any) -> None:
    qapp.setStyle("Fusion")


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(GUI_TESTS), str(REPO / "tests"), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    env["JOBTREE_ALLOW_ROOT"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def build_queue(
    location: Path,
    roots: int = 3,
    frames: int = 4,
    *,
    steps: int = 3,
    step: float = 0.0,
    fail: bool = False,
    label: str = "shot",
) -> jobtree.JobQueue:
    q = jobtree.createJobQueue(location)
    add_roots(q, roots, frames, steps=steps, step=step, fail=fail, label=label)
    return q


def add_roots(
    q: jobtree.JobQueue,
    roots: int,
    frames: int,
    *,
    steps: int = 3,
    step: float = 0.0,
    fail: bool = False,
    label: str = "shot",
) -> list[jobtree.JobHandle]:
    handles = []
    for r in range(roots):
        meta = {"shot": f"{r * 10 + 10:03d}", "artist": ["ann", "bo", "cy"][r % 3]}
        with q.createJob(
            "guiprocs:Group", label=f"{label} {r * 10 + 10:03d}", jobOptions={"metadata": meta}
        ) as root:
            for i in range(frames):
                kind = "guiprocs:Boom" if fail and i == frames - 1 else "guiprocs:Frame"
                root.createJob(kind, label=f"frame {i + 1:03d}", steps=steps, step=step)
        handles.append(root.handle)
    return handles


@pytest.fixture
def make_window(qtbot: Any) -> Iterator[Callable[..., Any]]:
    from jobtree.gui.views.mainwindow import MainWindow

    windows: list[Any] = []

    def make(queues: list[str], resize: bool = True, **kw: Any) -> Any:
        w = MainWindow(queues, **kw)
        qtbot.addWidget(w)
        if resize:
            w.resize(1400, 850)
        w.show()
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.shutdown()


class Workers:
    """drain_worker.py subprocesses; killed at teardown if still running."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, queue: str, n: int = 2, deadline: float = 60.0) -> None:
        for _ in range(n):
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, str(GUI_TESTS / "drain_worker.py"), queue, str(deadline)],
                    env=worker_env(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
            )

    def startDaemon(self, queue: str, name: str, deadline: float = 60.0) -> None:
        code = (
            "import sys; from jobtree.worker import runDaemon; "
            f"sys.exit(runDaemon({queue!r}, workers=1, burst=True, name={name!r}, "
            "allowRoot=True, logLevel='WARNING'))"
        )
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "-c", code],
                env=worker_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        )

    def wait(self, timeout: float = 60.0) -> list[int]:
        end = time.monotonic() + timeout
        codes = []
        for p in self.procs:
            try:
                codes.append(p.wait(max(0.1, end - time.monotonic())))
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("worker did not finish in time") from None
        return codes

    def kill(self) -> None:
        import signal

        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            p.wait()
            if p.stderr is not None:
                p.stderr.close()


@pytest.fixture
def workers() -> Iterator[Workers]:
    w = Workers()
    yield w
    w.kill()


def wait_until(
    qtbot: Any, predicate: Callable[[], Any], timeout: float = 10.0, what: str = ""
) -> None:
    """Process Qt events until *predicate* holds (fail after *timeout* seconds)."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        qtbot.wait(20)


def save_shot(widget: Any, name: str) -> Path:
    IMAGES.mkdir(parents=True, exist_ok=True)
    path = IMAGES / name
    assert widget.grab().save(str(path)), f"could not save {path}"
    return path
