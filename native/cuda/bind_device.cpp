// Device discovery and build facts of the CUDA module.
#include <sstream>

#include "bind_common.h"

#ifndef DFL_CUDA_ARCHS
#define DFL_CUDA_ARCHS ""
#endif

namespace dfl::cuda {
namespace {

int device_count() {
    int count = 0;
    check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
    return count;
}

py::dict build_info() {
    py::dict info;
    info["cuda_compiled"] = true;
    info["nvcc_version"] = nvcc_version();
    info["cuda_runtime_version"] = CUDART_VERSION;
    info["cudart"] = "static";
    std::vector<std::string> archs;
    std::istringstream stream(DFL_CUDA_ARCHS);
    for (std::string arch; std::getline(stream, arch, ',');) {
        if (!arch.empty()) archs.push_back(arch);
    }
    info["archs"] = archs;
#if defined(__GNUC__) && !defined(__clang__)
    info["host_compiler"] = std::string("gcc ") + __VERSION__;
#elif defined(__clang__)
    info["host_compiler"] = std::string("clang ") + __clang_version__;
#endif
    return info;
}

}  // namespace

void bind_device(py::module_& m) {
    m.def("device_count", &device_count,
          "Number of usable CUDA devices; RuntimeError (e.g. cudaErrorInsufficientDriver) when there is no driver.");
    m.def("driver_version", [] {
        int version = 0;
        check(cudaDriverGetVersion(&version), "cudaDriverGetVersion");
        return version;
    }, "CUDA version the installed driver supports (e.g. 13000), 0 when no driver is installed.");
    m.def("build_info", &build_info, "nvcc and CUDA runtime versions and the GPU architectures compiled in.");
}

}  // namespace dfl::cuda
