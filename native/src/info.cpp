// Build information of the native core: compiler, C++ standard, CUDA availability.
#include <string>

#include "dfl_native.h"

namespace py = pybind11;

namespace dfl {

static py::dict build_info() {
    py::dict info;
#if defined(__clang__)
    info["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    info["compiler"] = std::string("gcc ") + __VERSION__;
#else
    info["compiler"] = std::string("unknown");
#endif
    info["cplusplus"] = static_cast<long>(__cplusplus);
#ifdef DFL_HAVE_CUDA
    info["cuda_compiled"] = true;
#else
    info["cuda_compiled"] = false;
#endif
    return info;
}

void bind_info(py::module_& m) {
    m.def("build_info", &build_info, "Compiler, C++ standard and whether CUDA kernels were compiled in.");
}

}  // namespace dfl
