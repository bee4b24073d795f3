// Entry point of dfl_vfx._native: each concept's binding file adds its functions to the module.
#include "dfl_native.h"

PYBIND11_MODULE(_native, m) {
    m.doc() = "dfl_vfx native core (C++17). Pure-NumPy reference paths live in dfl_vfx; this module accelerates them.";
    dfl::bind_info(m);
    dfl::bind_warp(m);
    dfl::bind_mask(m);
    dfl::bind_composite(m);
}
