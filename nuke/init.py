"""DFL plugin start-up, run by Nuke in the GUI and in batch renders (nuke -t, nuke -x): headless only.

Adds the gizmos folder to the plugin path (so the DFL gizmos load), sets the DFL nodes' px_per_unit from their
caches before a Write renders (frames the farm baked after the script was loaded) and, at exit, stops the session's
engine and any extract or training run the DFLExtract panel started.
No menu here: menus live in menu.py, which Nuke runs only with a GUI.
"""

import atexit
import os

import nuke

_HERE = os.path.dirname(os.path.abspath(__file__))
nuke.pluginAddPath(os.path.join(_HERE, "gizmos"))


def _before_render() -> None:
    import dfl_nuke.swap_node

    dfl_nuke.swap_node.before_render()


nuke.addBeforeRender(_before_render)


def _close_engines() -> None:
    import dfl_nuke.extract
    import dfl_nuke.swap_node

    dfl_nuke.swap_node.close_clients()
    dfl_nuke.extract.stop_all()


atexit.register(_close_engines)
