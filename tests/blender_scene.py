"""A tiny animated .blend file made with Blender's own Python, for the render tests.

Cycles on the CPU (it renders on any host; Eevee and Workbench need OpenGL, which here only
Mesa's slow software EGL provides), 64x48 pixels, 4 samples, no denoising (Debian's Blender is
built without OpenImageDenoise: denoising would fail the render with "Build without
OpenImageDenoiser").
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from testutil import require_tool

SCENE_SCRIPT = """
import bpy, sys
path, frames = sys.argv[sys.argv.index("--") + 1], int(sys.argv[-1])
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = 4
scene.cycles.use_denoising = False
scene.view_layers[0].cycles.use_denoising = False
scene.render.resolution_x, scene.render.resolution_y = 64, 48
scene.render.resolution_percentage = 100
scene.render.image_settings.file_format = "PNG"
scene.frame_start, scene.frame_end = 1, frames
bpy.ops.mesh.primitive_cube_add()
cube = bpy.context.active_object
cube.rotation_euler = (0, 0, 0)
cube.keyframe_insert("rotation_euler", frame=1)
cube.rotation_euler = (0, 0, 3.14)
cube.keyframe_insert("rotation_euler", frame=frames)
bpy.ops.object.camera_add(location=(6, -6, 4), rotation=(1.1, 0, 0.785))
scene.camera = bpy.context.active_object
bpy.ops.object.light_add(type="SUN", location=(0, 0, 5))
bpy.ops.wm.save_as_mainfile(filepath=path)
"""


def make_scene(path: Path, frames: int = 12) -> Path:
    """Write the tiny scene to *path* (frames 1..*frames*) and return *path*."""
    blender = require_tool("blender", "blender")
    subprocess.run(
        [
            blender,
            "-b",
            "--factory-startup",
            "--python-expr",
            SCENE_SCRIPT,
            "--",
            str(path),
            str(frames),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert path.is_file(), f"Blender did not write {path}"
    return path
