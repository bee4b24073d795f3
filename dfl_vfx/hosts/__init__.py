"""dfl_vfx.hosts: engine-side support for host front ends (Nuke gizmo text and its parser, host installs)."""
