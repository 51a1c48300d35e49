"""Run by test_xvfb.py under Xvfb: open the monitor in a real X window, check it, save a shot.

python xvfb_smoke.py QUEUE SCREENSHOT
"""

from __future__ import annotations

import sys
import time

from jobtree.gui.views.mainwindow import MainWindow
from PySide6.QtWidgets import QApplication


def main() -> int:
    app = QApplication(["jobtree-gui"])
    app.setStyle("Fusion")
    if app.platformName() != "xcb":
        print(f"platform is {app.platformName()}, not xcb", file=sys.stderr)
        return 3
    w = MainWindow([sys.argv[1]])
    w.resize(1200, 700)
    w.show()
    end = time.monotonic() + 20
    while time.monotonic() < end:
        app.processEvents()
        if (
            w.model.rowCount(w.model.queueIndex(0)) >= 2
            and w.isVisible()
            and w.windowHandle().isExposed()
        ):
            break
        time.sleep(0.01)
    else:
        print("the window never showed the queue", file=sys.stderr)
        return 4
    w.tree.expand(w.model.index(0, 0, w.model.queueIndex(0)))
    for _ in range(50):
        app.processEvents()
        time.sleep(0.01)
    ok = w.grab().save(sys.argv[2])
    w.close()
    print("ok", w.model.rowCount(w.model.queueIndex(0)))
    return 0 if ok else 5


if __name__ == "__main__":
    sys.exit(main())
