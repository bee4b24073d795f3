"""DFL menu and toolbar entries (Nuke runs this file only with a GUI)."""

import nuke

NODES = (("DFL Swap", "DFLSwap"), ("DFL Mask", "DFLMask"), ("DFL Swap (native)", "DFLSwapNative"),
         ("DFL Extract", "DFLExtract"))

_toolbar = nuke.menu("Nodes").addMenu("DFL")
_menu = nuke.menu("Nuke").addMenu("DFL")
for _label, _cls in NODES:
    _toolbar.addCommand(_label, f"nuke.createNode('{_cls}')")
    _menu.addCommand(f"Create {_label}", f"nuke.createNode('{_cls}')")
