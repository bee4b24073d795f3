// Shared declarations for the dfl_vfx native core: one binding source per concept registers itself here.
#pragma once
#include <pybind11/pybind11.h>

namespace dfl {
void bind_info(pybind11::module_& m);
void bind_warp(pybind11::module_& m);       // warp.cpp: warp_to_plate
void bind_mask(pybind11::module_& m);       // mask.cpp: erode_dilate, gaussian_blur
void bind_composite(pybind11::module_& m);  // composite.cpp: composite, paste_face
}  // namespace dfl
