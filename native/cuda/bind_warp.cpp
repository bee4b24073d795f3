// Binding of the affine warp (warp.cu).
#include "bind_common.h"

namespace dfl::cuda {

void bind_warp(py::module_& m) {
    m.def(
        "warp",
        [](std::uintptr_t src, const std::string& src_dtype, int src_h, int src_w, int channels,
           const std::vector<double>& matrix, const std::vector<int>& bbox, const std::string& interpolation,
           std::uintptr_t dst, int device, std::uintptr_t stream) {
            const Dtype dtype = parse_dtype(src_dtype);
            const Interp interp = parse_interp(interpolation);
            const Affine affine = to_affine(matrix);
            const Box box = to_box(bbox);
            py::gil_scoped_release release;
            DeviceScope scope(device);
            check(launch_warp(device_ptr<const void>(src), dtype, src_h, src_w, channels, affine, box, interp,
                              device_ptr<float>(dst), as_stream(stream)),
                  "warp");
        },
        py::arg("src"), py::arg("src_dtype"), py::arg("src_h"), py::arg("src_w"), py::arg("channels"),
        py::arg("matrix"), py::arg("bbox"), py::arg("interpolation"), py::arg("dst"), py::arg("device"),
        py::arg("stream"),
        "dst (y1-y0, x1-x0, channels) float32 = src sampled at matrix @ (x, y, 1); enqueued on `stream`.");
}

}  // namespace dfl::cuda
