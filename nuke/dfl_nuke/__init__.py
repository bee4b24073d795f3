"""dfl_nuke: the Nuke side of dfl-vfx (DFLSwap / DFLMask node logic). Nuke's Python 3.9+ and the standard library
only, plus the bundled ``dfl_host`` client; never imports the engine, numpy or torch.

:mod:`dfl_nuke.bake` holds the logic that needs no Nuke (knob values to engine settings, input checks, frame
lists); :mod:`dfl_nuke.swap_node` is what the gizmos' buttons and callbacks call.
"""
