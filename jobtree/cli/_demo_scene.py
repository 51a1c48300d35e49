"""The demo's Blender scene, built by Blender's own Python (``blender -b --python-expr``).

Suzanne and three bouncing balls on a floor, Cycles on the CPU at 320x180 with 16 samples and no
denoising (Debian's Blender is built without OpenImageDenoise, and denoising would fail).
Arguments after ``--``: the .blend path to write and the number of frames.
"""

from __future__ import annotations

_SCRIPT = """
import math, sys
import bpy

path, frames = sys.argv[sys.argv.index("--") + 1], int(sys.argv[-1])
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
# Cycles on the CPU: Eevee and Workbench need OpenGL. No denoising: Debian's Blender is built
# without OpenImageDenoise, and denoising would fail every frame.
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = 16
scene.cycles.use_adaptive_sampling = True
scene.cycles.use_denoising = False
scene.view_layers[0].cycles.use_denoising = False
scene.cycles.max_bounces = 4
scene.render.resolution_x, scene.render.resolution_y = 320, 180
scene.render.resolution_percentage = 100
scene.render.image_settings.file_format = "PNG"
scene.render.fps = FRAME_RATE
scene.view_settings.look = "Medium High Contrast"
scene.view_settings.exposure = -1.0
scene.frame_start, scene.frame_end = 1, frames

world = bpy.data.worlds.new("sky")
scene.world = world
world.use_nodes = True
background = world.node_tree.nodes["Background"]
background.inputs["Color"].default_value = (0.55, 0.7, 1.0, 1)
background.inputs["Strength"].default_value = 0.45

def material(name, rgb, roughness, metallic=0.0):
    m = bpy.data.materials.new(name)
    m.use_nodes = True
    bsdf = m.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*rgb, 1)
    bsdf.inputs["Roughness"].default_value = roughness
    bsdf.inputs["Metallic"].default_value = metallic
    return m

bpy.ops.mesh.primitive_plane_add(size=40)
bpy.context.active_object.data.materials.append(material("ground", (0.55, 0.5, 0.45), 0.8))

# Suzanne turns once round over the animation while three balls hop round her.
bpy.ops.mesh.primitive_monkey_add(location=(0, 0, 1.2))
monkey = bpy.context.active_object
bpy.ops.object.shade_smooth()
smooth = monkey.modifiers.new("smooth", "SUBSURF")
smooth.levels = smooth.render_levels = 1
monkey.data.materials.append(material("suzanne", (0.95, 0.45, 0.1), 0.3))
for frame, angle in ((1, 0.0), (frames + 1, 2 * math.pi)):
    monkey.rotation_euler = (0, 0, angle)
    monkey.keyframe_insert("rotation_euler", frame=frame)
for curve in monkey.animation_data.action.fcurves:
    for key in curve.keyframe_points:
        key.interpolation = "LINEAR"

for i, rgb in enumerate([(0.1, 0.5, 0.95), (0.2, 0.8, 0.3), (0.9, 0.2, 0.4)]):
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.45, segments=24, ring_count=12)
    ball = bpy.context.active_object
    bpy.ops.object.shade_smooth()
    ball.data.materials.append(material(f"ball{i}", rgb, 0.2, 0.3))
    for frame in range(1, frames + 2):
        a = 2 * math.pi * ((frame - 1) / frames + i / 3)
        ball.location = (2.4 * math.cos(a), 2.4 * math.sin(a), 0.45 + 0.8 * abs(math.sin(3 * a)))
        ball.keyframe_insert("location", frame=frame)

bpy.ops.object.camera_add(location=(0, -7.5, 3.2), rotation=(math.radians(75), 0, 0))
scene.camera = bpy.context.active_object
bpy.ops.object.light_add(
    type="SUN", location=(0, 0, 10), rotation=(math.radians(40), math.radians(20), 0)
)
bpy.context.active_object.data.energy = 3
bpy.ops.wm.save_as_mainfile(filepath=path)
"""


def sceneScript(frameRate: int) -> str:
    """The script for ``--python-expr``, for an animation played at *frameRate*."""
    return _SCRIPT.replace("FRAME_RATE", str(frameRate))
