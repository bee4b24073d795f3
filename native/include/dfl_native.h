// Shared declarations for the dfl_vfx native core: one binding source per concept registers itself here.
#pragma once
#include <pybind11/pybind11.h>

namespace dfl {
void bind_info(pybind11::module_& m);
}  // namespace dfl
