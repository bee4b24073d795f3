// Bindings of the mask kernels (mask.cu): erode/dilate over a disc and the separable Gaussian blur.
#include <cmath>

#include "bind_common.h"

namespace dfl::cuda {

void bind_mask(py::module_& m) {
    m.def("erode_dilate_workspace", &erode_dilate_workspace, py::arg("height"), py::arg("width"), py::arg("radius"),
          "float32 elements of scratch that erode_dilate needs.");
    m.def(
        "erode_dilate",
        [](std::uintptr_t src, std::uintptr_t dst, int height, int width, double radius, std::uintptr_t workspace,
           int device, std::uintptr_t stream) {
            py::gil_scoped_release release;
            DeviceScope scope(device);
            check(launch_erode_dilate(device_ptr<const float>(src), device_ptr<float>(dst), height, width, radius,
                                      device_ptr<float>(workspace), as_stream(stream)),
                  "erode_dilate");
        },
        py::arg("src"), py::arg("dst"), py::arg("height"), py::arg("width"), py::arg("radius"), py::arg("workspace"),
        py::arg("device"), py::arg("stream"), "Grey erosion (radius > 0) or dilation (radius < 0) over a disc.");
    m.def("gaussian_blur_workspace", &gaussian_blur_workspace, py::arg("height"), py::arg("width"), py::arg("sigma"),
          "float32 elements of scratch that gaussian_blur needs.");
    m.def(
        "gaussian_blur",
        [](std::uintptr_t src, std::uintptr_t dst, int height, int width, double sigma, std::uintptr_t workspace,
           int device, std::uintptr_t stream) {
            py::gil_scoped_release release;
            DeviceScope scope(device);
            check(launch_gaussian_blur(device_ptr<const float>(src), device_ptr<float>(dst), height, width, sigma,
                                       -INFINITY, device_ptr<float>(workspace), as_stream(stream)),
                  "gaussian_blur");
        },
        py::arg("src"), py::arg("dst"), py::arg("height"), py::arg("width"), py::arg("sigma"), py::arg("workspace"),
        py::arg("device"), py::arg("stream"), "Separable Gaussian blur, radius ceil(3 sigma), zero outside.");
}

}  // namespace dfl::cuda
