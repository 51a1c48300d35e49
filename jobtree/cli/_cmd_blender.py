"""``jobtree blender-addon``: where the Blender add-on is, and installing it into Blender.

The add-on (procs/addons/jobtree_submit.py, package data of jobtree.procs) runs in Blender's own
Python, which does not see this Python's packages. The installer therefore writes into the
add-on's preferences where to import jobtree from: the directory holding jobtree's installed
distribution (its entry points name the procedures) plus, for an editable install
(``pip install -e``), the distribution's .pth file, whose import hook maps jobtree.procs to
procs/ in the source tree. docs/procs/blender-addon.md.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import os
import shutil
import subprocess

import click

from .._interp import pathWithoutThisPython
from ._app import CliError, Exit

DISTRIBUTION = "jobtree-farm"
ADDON_MODULE = "jobtree_submit"
BLENDER_ENV = "JOBTREE_BLENDER"
MARKER = "jobtree-addon:"
INSTALL_TIMEOUT = 300.0

# Run by Blender: sys.argv after "--" is the add-on file, the jobtree location and the file this
# jobtree is imported from. Blender loads and saves the user preferences of $BLENDER_USER_CONFIG
# (default ~/.config/blender/<version>/config) and installs into $BLENDER_USER_SCRIPTS/addons.
INSTALL_SCRIPT = r"""
import os, sys
import addon_utils, bpy

MARKER = "jobtree-addon:"
addonFile, location, expected = sys.argv[sys.argv.index("--") + 1:][:3]
name = os.path.splitext(os.path.basename(addonFile))[0]
try:
    if addon_utils.check(name)[1]:
        # Enabled by the preferences Blender just loaded: unload the old code first.
        bpy.ops.preferences.addon_disable(module=name)
    if "FINISHED" not in bpy.ops.preferences.addon_install(filepath=addonFile, overwrite=True):
        raise RuntimeError(f"Blender did not install {addonFile}")
    bpy.ops.preferences.addon_enable(module=name)
    if not addon_utils.check(name)[1] or name not in bpy.context.preferences.addons:
        raise RuntimeError(f"the add-on {name} did not enable; see the traceback above")
    bpy.context.preferences.addons[name].preferences.jobtreePath = location
    summary = sys.modules[name].checkJobtree(location)
    import jobtree
    found = os.path.realpath(jobtree.__file__)
    if found != os.path.realpath(expected):
        raise RuntimeError(
            f"Blender imports jobtree from {found}, not from {expected} (another jobtree is on "
            "Blender's Python path); remove it or fix the jobtree location by hand"
        )
    bpy.ops.wm.save_userpref()
except Exception as exc:  # Blender prints the traceback
    print(MARKER, "error:", exc, flush=True)
    raise
print(MARKER, "addon", os.path.join(bpy.utils.user_resource("SCRIPTS", path="addons"), name + ".py"))
print(MARKER, "config", bpy.utils.user_resource("CONFIG"))
print(MARKER, "jobtree", summary, flush=True)
"""


def addonFile() -> str:
    """The path of the add-on file shipped in jobtree.procs."""
    try:
        files = importlib.resources.files("jobtree.procs")
    except ModuleNotFoundError:
        raise CliError(
            "the Blender add-on is not available: jobtree.procs is not installed",
            Exit.UNAVAILABLE,
        ) from None
    path = str(files.joinpath("addons", ADDON_MODULE + ".py"))
    if not os.path.isfile(path):
        raise CliError(
            f"the Blender add-on {path} is missing from this installation of jobtree; "
            "reinstall jobtree-farm",
            Exit.UNAVAILABLE,
        )
    return path


def jobtreeLocation() -> list[str]:
    """What Blender's Python must add to import this jobtree (the add-on's jobtreePath): the
    directory of jobtree's installed distribution, then its .pth files (an editable install's
    import hook). Distributions without a RECORD (the .egg-info a source tree keeps, found
    through the current directory) are not installations and are passed over."""
    for dist in importlib.metadata.distributions(name=DISTRIBUTION):
        if dist.read_text("RECORD") is None:
            continue
        base = os.path.abspath(str(dist.locate_file("")))
        pths = [
            os.path.join(base, str(f))
            for f in dist.files or []
            if f.suffix == ".pth" and len(f.parts) == 1
        ]
        return [base, *pths]
    raise CliError(
        f"jobtree is not installed (no {DISTRIBUTION} distribution with a RECORD on this "
        "Python's path), so Blender cannot import it from here; install it with "
        f"`pip install {DISTRIBUTION}` (or `pip install -e .` in a checkout)",
        Exit.UNAVAILABLE,
    )


def findBlender(explicit: str | None) -> str:
    """The Blender executable: --blender, then $JOBTREE_BLENDER, then blender on PATH."""
    for value, source in (
        (explicit, "--blender"),
        (os.environ.get(BLENDER_ENV), f"${BLENDER_ENV}"),
    ):
        if value:
            found = shutil.which(os.path.expanduser(value))
            if found is None:
                raise CliError(
                    f"Blender not found: {value} (from {source}) is not an executable file",
                    Exit.UNAVAILABLE,
                )
            return found
    found = shutil.which("blender")
    if found is None:
        raise CliError(
            "Blender not found: 'blender' is not on PATH; pass --blender PATH or set "
            f"${BLENDER_ENV}",
            Exit.UNAVAILABLE,
        )
    return found


def blenderEnvironment() -> dict[str, str]:
    """os.environ for running Blender, without this Python's own bin directories on PATH
    (see jobtree._interp.pathWithoutThisPython)."""
    return dict(os.environ, PATH=pathWithoutThisPython())


def installAddon(blender: str, addon: str, location: list[str]) -> dict[str, str]:
    """Install and enable the add-on in Blender's user preferences with *location* filled in,
    check that Blender imports this jobtree, save the preferences. Returns what Blender printed
    after the marker (addon, config, jobtree); CliError with Blender's output on failure."""
    jobtree = importlib.import_module("jobtree")
    argv = [
        blender,
        "-b",  # no --factory-startup: the user's preferences are loaded, changed and saved
        "--python-exit-code",
        "1",
        "--python-expr",
        INSTALL_SCRIPT,
        "--",
        addon,
        os.pathsep.join(location),
        str(jobtree.__file__),
    ]
    try:
        proc = subprocess.run(
            argv,
            env=blenderEnvironment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=INSTALL_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise CliError(
            f"installing the add-on: {blender} did not finish within {INSTALL_TIMEOUT:.0f} s",
            Exit.FAILED,
        ) from None
    except OSError as exc:
        raise CliError(f"cannot run Blender {blender}: {exc.strerror}", Exit.UNAVAILABLE) from None
    info: dict[str, str] = {}
    error = None
    for line in proc.stdout.splitlines():
        if line.startswith(MARKER):
            key, _, value = line[len(MARKER) :].strip().partition(" ")
            if key == "error:":
                error = value
            else:
                info[key] = value
    if proc.returncode != 0 or error is not None or "jobtree" not in info:
        # Blender echoes a failed --python-expr script in full: only its own output is news.
        output = proc.stdout.split("Error: script failed, expr:")[0]
        tail = "\n".join(output.rstrip().splitlines()[-40:])
        reason = error or f"Blender exited with code {proc.returncode}"
        raise CliError(
            f"installing the add-on into {blender} failed: {reason}\n"
            f"--- Blender's output (last lines) ---\n{tail}",
            Exit.FAILED,
        )
    return info


@click.command("blender-addon")
@click.option(
    "--install",
    is_flag=True,
    help="Install and enable the add-on in Blender's user preferences, with jobtree's location "
    "filled in (honours $BLENDER_USER_CONFIG and $BLENDER_USER_SCRIPTS).",
)
@click.option(
    "--blender",
    "blenderPath",
    metavar="PATH",
    help=f"The Blender executable (default: ${BLENDER_ENV}, then blender on PATH).",
)
def blenderAddon(install: bool, blenderPath: str | None) -> None:
    """The Blender add-on that adds Render > Submit to jobtree: print where it is and how to
    install it, or install it with --install. See docs/procs/blender-addon.md."""
    addon = addonFile()
    location = jobtreeLocation()
    if not install:
        click.echo(f"add-on file:       {addon}")
        click.echo(f"jobtree location:  {os.pathsep.join(location)}")
        click.echo("")
        click.echo(
            "Install it with `jobtree blender-addon --install [--blender PATH]`, or by hand:"
        )
        click.echo(
            "  1. Blender > Edit > Preferences > Add-ons > Install..., pick the add-on file;"
        )
        click.echo("  2. tick 'Render: jobtree: Submit to jobtree';")
        click.echo("  3. open its preferences and paste the jobtree location above into")
        click.echo("     'jobtree location'; set the queue; press 'Check jobtree'.")
        return
    blender = findBlender(blenderPath)
    info = installAddon(blender, addon, location)
    click.echo(f"installed {info.get('addon', ADDON_MODULE)} into {blender}")
    click.echo(f"preferences saved in {info.get('config', '?')}")
    click.echo(f"Blender imports {info['jobtree']}")
    click.echo("In Blender: Render > Submit to jobtree (set the queue in the dialog or in the")
    click.echo("add-on's preferences).")
