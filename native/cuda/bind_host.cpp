// Bindings of the CPU run of the kernels' per-pixel code (host_ops.h) on NumPy arrays, for tests without a GPU.
#include <cmath>

#include <pybind11/numpy.h>

#include "bind_common.h"
#include "host_ops.h"

namespace dfl::cuda {
namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// float32 or float16 C-contiguous array of `ndim` dimensions; returns its Dtype.
Dtype float_dtype(const py::array& array, const char* name, int ndim) {
    const bool contiguous = (array.flags() & py::array::c_style) != 0;
    if (array.ndim() != ndim || array.dtype().kind() != 'f' || !contiguous ||
        (array.itemsize() != 4 && array.itemsize() != 2)) {
        throw py::value_error(std::string(name) + " must be a C-contiguous float32 or float16 array of " +
                              std::to_string(ndim) + " dimensions");
    }
    return array.itemsize() == 2 ? Dtype::kFloat16 : Dtype::kFloat32;
}

FloatArray host_warp_py(const py::array& src, const std::vector<double>& matrix, const std::vector<int>& bbox,
                        const std::string& interpolation) {
    const Dtype dtype = float_dtype(src, "src", 3);
    const Box box = to_box(bbox);
    if (box.width() < 0 || box.height() < 0) throw py::value_error("bbox must satisfy x0 <= x1 and y0 <= y1");
    const int channels = static_cast<int>(src.shape(2));
    FloatArray out({box.height(), box.width(), channels});
    host_warp(src.data(), dtype, static_cast<int>(src.shape(0)), static_cast<int>(src.shape(1)), channels,
              to_affine(matrix), box, parse_interp(interpolation), out.mutable_data());
    return out;
}

FloatArray host_erode_dilate_py(const FloatArray& mask, double radius) {
    if (mask.ndim() != 2) throw py::value_error("mask must have 2 dimensions");
    FloatArray out({mask.shape(0), mask.shape(1)});
    host_erode_dilate(mask.data(), out.mutable_data(), static_cast<int>(mask.shape(0)),
                      static_cast<int>(mask.shape(1)), radius);
    return out;
}

FloatArray host_gaussian_blur_py(const FloatArray& mask, double sigma, float floor_value) {
    if (mask.ndim() != 2) throw py::value_error("mask must have 2 dimensions");
    FloatArray out({mask.shape(0), mask.shape(1)});
    host_gaussian_blur(mask.data(), out.mutable_data(), static_cast<int>(mask.shape(0)),
                       static_cast<int>(mask.shape(1)), sigma, floor_value);
    return out;
}

void host_composite_py(py::array& plate, const FloatArray& face, const FloatArray& mask,
                       const std::vector<int>& origin, std::optional<int> alpha_channel) {
    const Dtype dtype = float_dtype(plate, "plate", 3);
    if (!plate.writeable()) throw py::value_error("plate must be writeable (it is changed in place)");
    const int channels = static_cast<int>(plate.shape(2));
    const int alpha = alpha_index(alpha_channel);
    if (channels < 3 || alpha >= channels || (alpha >= 0 && alpha < 3)) {
        throw py::value_error("plate must have RGB first and alpha_channel must index a channel after RGB");
    }
    if (mask.ndim() != 2 || face.ndim() != 3 || face.shape(0) != mask.shape(0) || face.shape(1) != mask.shape(1) ||
        face.shape(2) != 3) {
        throw py::value_error("face must have shape (h, w, 3) matching mask (h, w)");
    }
    if (origin.size() != 2) throw py::value_error("origin must be (x0, y0)");
    host_composite(plate.mutable_data(), dtype, static_cast<int>(plate.shape(0)), static_cast<int>(plate.shape(1)),
                   channels, face.data(), 3, mask.data(), static_cast<int>(mask.shape(0)),
                   static_cast<int>(mask.shape(1)), origin[0], origin[1], alpha);
}

}  // namespace

void bind_host(py::module_& m) {
    m.def("host_warp", &host_warp_py, py::arg("src"), py::arg("matrix"), py::arg("bbox"), py::arg("interpolation"),
          "CPU run of the warp kernel's code: src (h, w, C) float32|float16 -> (y1-y0, x1-x0, C) float32.");
    m.def("host_erode_dilate", &host_erode_dilate_py, py::arg("mask"), py::arg("radius"),
          "CPU run of the erode/dilate kernels' code on a (h, w) float32 mask.");
    m.def("host_gaussian_blur", &host_gaussian_blur_py, py::arg("mask"), py::arg("sigma"),
          py::arg("floor_value") = -INFINITY,
          "CPU run of the blur kernels' code on a (h, w) float32 mask; values below floor_value become 0.");
    m.def("host_composite", &host_composite_py, py::arg("plate"), py::arg("face"), py::arg("mask"),
          py::arg("origin"), py::arg("alpha_channel"),
          "CPU run of the composite kernel's code: plate (H, W, C) float32|float16 changed in place.");
}

}  // namespace dfl::cuda
