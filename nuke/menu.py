"""DFL menu and toolbar entries (Nuke runs this file only with a GUI)."""

import nuke

_toolbar = nuke.menu("Nodes").addMenu("DFL")
_toolbar.addCommand("DFL Swap", "nuke.createNode('DFLSwap')")
_toolbar.addCommand("DFL Mask", "nuke.createNode('DFLMask')")
_menu = nuke.menu("Nuke").addMenu("DFL")
_menu.addCommand("Create DFL Swap", "nuke.createNode('DFLSwap')")
_menu.addCommand("Create DFL Mask", "nuke.createNode('DFLMask')")
