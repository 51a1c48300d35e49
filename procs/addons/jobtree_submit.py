"""Blender add-on: Render > Submit to jobtree.

Saves a copy of the open .blend file next to a jobtree queue and submits its animation there
with ``jobtree.procs.submitAnimation``: one render job per chunk of frames under a root that
encodes the movie. Install it with ``jobtree blender-addon --install`` (docs/procs/blender-addon.md).

This file is loaded by Blender's own Python, which is not the Python jobtree is installed in:
it imports jobtree only when it submits, from the location kept in the add-on's preferences.
Blender turns the class annotations below into properties, so they stay real annotations (no
``from __future__ import annotations``), and the syntax stays within Blender 3.1's Python 3.10.
"""

import importlib
import os
import re
import sys
import time
from typing import Any

import bpy
from bpy.props import BoolProperty, IntProperty, StringProperty

bl_info = {
    "name": "jobtree: Submit to jobtree",
    "author": "jobtree developers",
    "version": (0, 1, 0),
    "blender": (3, 1, 0),
    "location": "Render > Submit to jobtree",
    "description": "Renders the animation on a jobtree farm, one job per chunk of frames",
    "category": "Render",
}

ADDON = __name__
"""The add-on's module name, which is also the key of its preferences."""

INSTALL_HINT = (
    "set jobtree's location in the add-on preferences or run `jobtree blender-addon --install`"
)

_processedPth: set[str] = set()


# -- importing jobtree from another Python's installation ------------------------------------------


def locationEntries(setting: str) -> list[str]:
    """The entries of the jobtreePath preference: directories and .pth files, separated by
    os.pathsep (':' on Linux and macOS, ';' on Windows)."""
    return [e.strip() for e in setting.split(os.pathsep) if e.strip()]


def _addPth(path: str) -> None:
    """Process a .pth file the way site.py does: directory lines are appended to sys.path, lines
    starting with 'import' are executed (an editable install's import hook is such a line)."""
    if path in _processedPth:
        return
    sitedir = os.path.dirname(path)
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith(("import ", "import\t")):
            exec(line)
            continue
        directory = os.path.abspath(os.path.join(sitedir, line.rstrip()))
        if os.path.isdir(directory) and directory not in sys.path:
            sys.path.append(directory)
    _processedPth.add(path)


def loadJobtree(setting: str) -> Any:
    """Import jobtree and jobtree.procs after adding the locations in *setting* (the jobtreePath
    preference) to sys.path. Appended, not prepended: Blender's own modules keep precedence.
    Raises ImportError with a message that says what to do."""
    for entry in locationEntries(setting):
        entry = os.path.expanduser(entry)
        if entry.endswith(".pth") and os.path.isfile(entry):
            parent = os.path.dirname(entry)
            if parent not in sys.path:
                sys.path.append(parent)
            _addPth(entry)
        elif os.path.isdir(entry):
            if entry not in sys.path:
                sys.path.append(entry)
        else:
            raise ImportError(f"jobtree location {entry} does not exist: {INSTALL_HINT}")
    importlib.invalidate_caches()
    try:
        jobtree: Any = importlib.import_module("jobtree")
        importlib.import_module("jobtree.procs")
    except ImportError as exc:
        where = f" from {setting!r}" if setting.strip() else " (no jobtree location is set)"
        raise ImportError(f"cannot import jobtree{where}: {exc}; {INSTALL_HINT}") from exc
    if not hasattr(jobtree.procs, "submitAnimation"):
        raise ImportError(
            f"the jobtree at {os.path.dirname(jobtree.__file__)} has no "
            f"jobtree.procs.submitAnimation; upgrade it, or {INSTALL_HINT}"
        )
    return jobtree


PROCEDURES = ("blender", "ffmpeg", "command", "email")
"""The job types the operator's submissions use (the renders, the encode or no-op root, the
e-mail hooks): submitAnimation loads each one to check its parameters."""


def checkJobtree(setting: str) -> str:
    """Import jobtree as the operator does and load the procedures its submissions use, through
    their entry points as submitAnimation does. Returns a one-line summary; raises ImportError."""
    jobtree = loadJobtree(setting)
    from importlib.metadata import entry_points

    where = os.path.dirname(jobtree.__file__)
    for name in PROCEDURES:
        found = list(entry_points(group="jobtree.procs", name=name))
        if not found:
            raise ImportError(
                f"jobtree imports from {where}, but its procedure {name!r} is not registered "
                f"(no jobtree-farm distribution on Blender's sys.path); {INSTALL_HINT}"
            )
        try:
            found[0].load()
        except Exception as exc:
            raise ImportError(
                f"jobtree's procedure {name!r} does not load in Blender's Python: "
                f"{type(exc).__name__}: {exc}{stdlibHint(str(exc))}"
            ) from exc
    return f"jobtree {jobtree.__version__} from {where}"


def stdlibHint(message: str) -> str:
    """An explanation for *message* when it shows Blender's Python running with the standard
    library of another Python (whose extension modules do not fit it); else ""."""
    if "undefined symbol" not in message:
        return ""
    version = ".".join(map(str, sys.version_info[:2]))
    return (
        f" (Blender's Python {sys.version.split()[0]} uses the standard library in "
        f"{sys.prefix}: Blender takes the first python{version} on PATH as its home, here "
        f"another Python's, e.g. of an activated virtualenv or pyenv; start Blender with a "
        f"PATH without {os.path.join(sys.prefix, 'bin')})"
    )


# -- where files go --------------------------------------------------------------------------------


def _safeStem(filepath: str) -> str:
    """The .blend file's name without extension, safe inside a frame pattern ('#' is a frame
    digit there); "untitled" for a file never saved."""
    stem = os.path.splitext(os.path.basename(filepath))[0] if filepath else ""
    return re.sub(r"[^\w.-]+", "_", stem).strip("._") or "untitled"


def submissionPaths(queuePath: str, blendPath: str, outputDir: str) -> tuple[str, str]:
    """(copy of the .blend, output directory) of a new submission, both named
    ``<stem>-<stamp>``: ``<queue parent>/scenes/<name>.blend`` and
    ``<outputDir or <queue parent>/renders>/<name>/``. A name already taken gets a suffix."""
    parent = os.path.dirname(os.path.abspath(queuePath))
    renders = outputDir or os.path.join(parent, "renders")
    base = f"{_safeStem(blendPath)}-{time.strftime('%Y%m%d-%H%M%S')}"
    name, n = base, 1
    while os.path.exists(os.path.join(parent, "scenes", name + ".blend")) or os.path.exists(
        os.path.join(renders, name)
    ):
        n += 1
        name = f"{base}-{n}"
    return os.path.join(parent, "scenes", name + ".blend"), os.path.join(renders, name)


def addonPreferences(context: Any) -> Any:
    return context.preferences.addons[ADDON].preferences


# -- preferences -----------------------------------------------------------------------------------


class JobtreePreferences(bpy.types.AddonPreferences):  # type: ignore[misc]
    bl_idname = ADDON

    queuePath: StringProperty(  # type: ignore[valid-type]
        name="Queue",
        description="The jobtree queue directory to submit to (made with `jobtree init`)",
        subtype="DIR_PATH",
        default="",
    )
    outputDir: StringProperty(  # type: ignore[valid-type]
        name="Output directory",
        description="Where rendered frames and the movie go, in a folder per submission "
        "(empty: <queue parent>/renders)",
        subtype="DIR_PATH",
        default="",
    )
    jobtreePath: StringProperty(  # type: ignore[valid-type]
        name="jobtree location",
        description="Where Blender's Python imports jobtree from: directories and .pth files "
        "separated by '" + os.pathsep + "' (filled by `jobtree blender-addon --install`)",
        default="",
    )

    def draw(self, context: Any) -> None:
        layout = self.layout
        layout.prop(self, "queuePath")
        layout.prop(self, "outputDir")
        layout.prop(self, "jobtreePath")
        layout.operator(JOBTREE_OT_check.bl_idname, icon="CHECKMARK")


class JOBTREE_OT_check(bpy.types.Operator):  # type: ignore[misc]
    """Check that Blender can import jobtree from the location in the preferences"""

    bl_idname = "jobtree.check"
    bl_label = "Check jobtree"

    def execute(self, context: Any) -> set[str]:
        try:
            summary = checkJobtree(addonPreferences(context).jobtreePath)
        except ImportError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, summary)
        return {"FINISHED"}


# -- the operator ----------------------------------------------------------------------------------


class RENDER_OT_jobtree_submit(bpy.types.Operator):  # type: ignore[misc]
    """Save a copy of this file next to a jobtree queue and render its animation there"""

    bl_idname = "render.jobtree_submit"
    bl_label = "Submit to jobtree"
    bl_options = {"REGISTER"}

    # SKIP_SAVE: the frame range and queue start from the scene and the preferences every time.
    frame_start: IntProperty(  # type: ignore[valid-type]
        name="Start frame",
        description="First frame to render (default: the scene's start frame)",
        options={"SKIP_SAVE"},
    )
    frame_end: IntProperty(  # type: ignore[valid-type]
        name="End frame",
        description="Last frame to render (default: the scene's end frame)",
        options={"SKIP_SAVE"},
    )
    chunk: IntProperty(  # type: ignore[valid-type]
        name="Chunk size",
        description="Frames per render job",
        default=10,
        min=1,
    )
    queue: StringProperty(  # type: ignore[valid-type]
        name="Queue",
        description="The jobtree queue directory (default: the add-on preferences; a queue "
        "you submit to becomes the new default)",
        subtype="DIR_PATH",
        options={"SKIP_SAVE"},
    )
    encode: BoolProperty(  # type: ignore[valid-type]
        name="Encode movie",
        description="Encode the frames into a movie once they are all rendered",
        default=True,
    )
    notify: StringProperty(  # type: ignore[valid-type]
        name="Notify e-mail",
        description="Send a message to this address when the animation is done or failed "
        "(optional; the workers need an SMTP server)",
        default="",
    )

    def invoke(self, context: Any, event: Any) -> set[str]:
        self._fillDefaults(context)
        return context.window_manager.invoke_props_dialog(self, width=480)  # type: ignore[no-any-return]

    def draw(self, context: Any) -> None:
        layout = self.layout
        layout.use_property_split = True
        row = layout.row(align=True)
        row.prop(self, "frame_start", text="Frames")
        row.prop(self, "frame_end", text="")
        layout.prop(self, "chunk")
        layout.prop(self, "queue")
        layout.prop(self, "encode")
        layout.prop(self, "notify")

    def _fillDefaults(self, context: Any) -> None:
        scene = context.scene
        if not self.properties.is_property_set("frame_start"):
            self.frame_start = scene.frame_start
        if not self.properties.is_property_set("frame_end"):
            self.frame_end = scene.frame_end
        if not self.properties.is_property_set("queue"):
            self.queue = addonPreferences(context).queuePath

    def execute(self, context: Any) -> set[str]:
        self._fillDefaults(context)
        prefs = addonPreferences(context)
        try:
            message = self._submit(context, prefs)
        except _Refused as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, message)
        return {"FINISHED"}

    def _submit(self, context: Any, prefs: Any) -> str:
        queuePath = bpy.path.abspath(self.queue.strip()) if self.queue.strip() else ""
        if not queuePath:
            raise _Refused(
                "no jobtree queue given: enter the queue directory in the dialog or in the "
                "add-on preferences"
            )
        queuePath = os.path.normpath(queuePath)
        if self.frame_end < self.frame_start:
            raise _Refused(
                f"the end frame {self.frame_end} is before the start frame {self.frame_start}"
            )
        try:
            jobtree = loadJobtree(prefs.jobtreePath)
        except ImportError as exc:
            raise _Refused(str(exc)) from None
        if not os.path.isdir(queuePath):
            raise _Refused(
                f"queue {queuePath} does not exist: pick a jobtree queue directory, or create "
                f"one with `jobtree init {queuePath}`"
            )
        try:
            queue = jobtree.JobQueue(queuePath)
        except jobtree.QueueNotFound:
            raise _Refused(
                f"{queuePath} is not a jobtree queue: pick a queue directory, or create one "
                f"with `jobtree init {queuePath}`"
            ) from None
        except (jobtree.JobTreeError, OSError) as exc:
            raise _Refused(f"cannot open queue {queuePath}: {exc}") from None

        outputDir = bpy.path.abspath(prefs.outputDir.strip()) if prefs.outputDir.strip() else ""
        copyPath, outputPath = submissionPaths(queuePath, bpy.data.filepath, outputDir)
        try:
            os.makedirs(os.path.dirname(copyPath), exist_ok=True)
            os.makedirs(outputPath, exist_ok=True)
        except OSError as exc:
            raise _Refused(f"cannot create {exc.filename}: {exc.strerror}") from None
        bpy.ops.wm.save_as_mainfile(filepath=copyPath, copy=True, relative_remap=True)
        if not os.path.isfile(copyPath):
            _removeQuietly(copyPath, outputPath)
            raise _Refused(f"Blender did not save the copy {copyPath}; see the console")
        try:
            root = jobtree.procs.submitAnimation(
                queue,
                copyPath,
                frames=f"{self.frame_start}-{self.frame_end}",
                chunk=self.chunk,
                output=outputPath + os.sep,  # the trailing separator says "a directory"
                encode=self.encode,
                notify=self.notify.strip() or None,
            )
        except Exception as exc:
            # Nothing was submitted: take back what this submission wrote.
            _removeQuietly(copyPath, outputPath)
            raise _Refused(
                f"submitting {copyPath} to {queuePath} failed: {exc}{stdlibHint(str(exc))}"
            ) from None
        if prefs.queuePath != self.queue:
            prefs.queuePath = self.queue
            context.preferences.is_dirty = True  # kept by Blender's auto-save of preferences
        jobs = sum(root.stateCounts().values())
        # The short id: what `jobtree show`, `jobtree logs` and the viewer take (docs/cli.md).
        return f"submitted {root.rootId[-6:]}: {jobs} jobs to {queuePath}"


class _Refused(Exception):
    """A submission refused before anything reached the queue; the message is for the user."""


def _removeQuietly(copyPath: str, outputPath: str) -> None:
    try:
        os.remove(copyPath)
    except OSError:
        pass
    try:
        os.rmdir(outputPath)  # only while still empty
    except OSError:
        pass


def drawMenu(self: Any, context: Any) -> None:
    self.layout.separator()
    self.layout.operator(RENDER_OT_jobtree_submit.bl_idname, icon="NETWORK_DRIVE")


CLASSES = (JobtreePreferences, JOBTREE_OT_check, RENDER_OT_jobtree_submit)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.TOPBAR_MT_render.append(drawMenu)


def unregister() -> None:
    bpy.types.TOPBAR_MT_render.remove(drawMenu)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
