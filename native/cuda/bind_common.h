// Helpers shared by the _native_cuda binding files: device pointers and streams passed from Python as integers,
// the CUDA status turned into a Python exception, the device made current for the duration of a call.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "dfl_cuda.h"

namespace dfl::cuda {

namespace py = pybind11;

// RuntimeError("CUDA cudaErrorName: description (context)") unless status is cudaSuccess.
inline void check(cudaError_t status, const char* context) {
    if (status == cudaSuccess) return;
    throw std::runtime_error(std::string("CUDA ") + cudaGetErrorName(status) + ": " + cudaGetErrorString(status) +
                             " (" + context + ")");
}

template <typename T>
T* device_ptr(std::uintptr_t address) {
    return reinterpret_cast<T*>(address);
}

inline cudaStream_t as_stream(std::uintptr_t handle) { return reinterpret_cast<cudaStream_t>(handle); }

// Makes `device` current while the call enqueues its work, then restores the caller's device.
class DeviceScope {
public:
    explicit DeviceScope(int device) {
        check(cudaGetDevice(&previous_), "cudaGetDevice");
        if (previous_ != device) check(cudaSetDevice(device), "cudaSetDevice");
    }
    ~DeviceScope() {
        int current = previous_;
        if (cudaGetDevice(&current) == cudaSuccess && current != previous_) cudaSetDevice(previous_);
    }
    DeviceScope(const DeviceScope&) = delete;
    DeviceScope& operator=(const DeviceScope&) = delete;

private:
    int previous_ = 0;
};

inline Dtype parse_dtype(const std::string& name) {
    if (name == "float32") return Dtype::kFloat32;
    if (name == "float16") return Dtype::kFloat16;
    throw py::value_error("dtype must be 'float32' or 'float16', got '" + name + "'");
}

inline Interp parse_interp(const std::string& name) {
    if (name == "bilinear") return Interp::kBilinear;
    if (name == "bicubic") return Interp::kBicubic;
    if (name == "lanczos") return Interp::kLanczos;
    throw py::value_error("interpolation must be 'bilinear', 'bicubic' or 'lanczos', got '" + name + "'");
}

inline Affine to_affine(const std::vector<double>& values) {
    if (values.size() != 6) throw py::value_error("matrix must hold 6 values (a 2x3 affine, row-major)");
    Affine affine{};
    for (int k = 0; k < 6; ++k) affine.m[k] = values[k];
    return affine;
}

inline Box to_box(const std::vector<int>& values) {
    if (values.size() != 4) throw py::value_error("bbox must be (x0, y0, x1, y1)");
    return Box{values[0], values[1], values[2], values[3]};
}

inline int alpha_index(const std::optional<int>& alpha_channel) { return alpha_channel.value_or(-1); }

void bind_device(py::module_& m);
void bind_warp(py::module_& m);
void bind_mask(py::module_& m);
void bind_composite(py::module_& m);
void bind_paste(py::module_& m);
void bind_host(py::module_& m);

}  // namespace dfl::cuda
