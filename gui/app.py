"""``jobtree-gui QUEUE...`` (and ``jobtree gui QUEUE...``): open the monitor on these queues."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence


def parseArgs(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="jobtree-gui",
        description="Watch jobtree queues: the tree of jobs, their logs, the workers.",
    )
    p.add_argument(
        "queues",
        nargs="*",
        help="queue directories (default: the queues open when the monitor was last closed)",
    )
    p.add_argument(
        "--poll",
        type=float,
        default=None,
        metavar="SECONDS",
        help="poll the queues' change markers every SECONDS instead of using inotify "
        "(automatic on network filesystems, default 2 s there)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log what the monitor does")
    return p.parse_args(list(argv) if argv is not None else None)


def main(argv: Sequence[str] | None = None) -> int:
    """Open the monitor; returns the exit code when its window is closed."""
    args = parseArgs(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    from PySide6.QtWidgets import QApplication, QMessageBox

    from jobtree import JobQueue

    from .views.mainwindow import MainWindow, defaultSettings

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "jobtree-gui"])
    app.setApplicationName("jobtree-gui")
    app.setOrganizationName("jobtree")
    app.setStyle("Fusion")
    queues = list(args.queues)
    if not queues:
        saved = defaultSettings().value("queues")
        if isinstance(saved, str):
            saved = [saved]
        queues = [q for q in (saved or []) if os.path.isdir(q)]
    bad = []
    for q in queues:
        try:
            JobQueue(q)
        except Exception as exc:
            bad.append(f"{q}: {exc}")
    if bad:
        print("\n".join(bad), file=sys.stderr)
        queues = [q for q in queues if not any(b.startswith(f"{q}:") for b in bad)]
        if not queues:
            return 2
    window = MainWindow(queues, poll=args.poll, useInotify=False if args.poll is not None else None)
    window.show()
    if not queues:
        QMessageBox.information(window, "jobtree", "Open a queue with Queue > Open queue (Ctrl+O).")
    return int(app.exec())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
