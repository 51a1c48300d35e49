"""Standard job procedures (installed as ``jobtree.procs``). Depends on jobtree, never the reverse.

Importing this package stays light: the procedures' modules (and what they use: numpy, Pillow,
smtplib) load when a job of their type is submitted or run, through their entry points.
"""

from ._tool import ToolError, ToolProc
from .animation import submitAnimation

__all__ = ["ToolError", "ToolProc", "submitAnimation"]
