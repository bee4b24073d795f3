// Binding of the in-place composite (composite.cu).
#include "bind_common.h"

namespace dfl::cuda {

void bind_composite(py::module_& m) {
    m.def(
        "composite",
        [](std::uintptr_t plate, const std::string& plate_dtype, int plate_h, int plate_w, int plate_channels,
           std::uintptr_t face, std::uintptr_t mask, int height, int width, int origin_x, int origin_y,
           std::optional<int> alpha_channel, int device, std::uintptr_t stream) {
            const Dtype dtype = parse_dtype(plate_dtype);
            py::gil_scoped_release release;
            DeviceScope scope(device);
            check(launch_composite(device_ptr<void>(plate), dtype, plate_h, plate_w, plate_channels,
                                   device_ptr<const float>(face), 3, device_ptr<const float>(mask), height, width,
                                   origin_x, origin_y, alpha_index(alpha_channel), as_stream(stream)),
                  "composite");
        },
        py::arg("plate"), py::arg("plate_dtype"), py::arg("plate_h"), py::arg("plate_w"), py::arg("plate_channels"),
        py::arg("face"), py::arg("mask"), py::arg("height"), py::arg("width"), py::arg("origin_x"),
        py::arg("origin_y"), py::arg("alpha_channel"), py::arg("device"), py::arg("stream"),
        "Blends face (h, w, 3) float32 into the premultiplied plate in place where mask (h, w) > 0.");
}

}  // namespace dfl::cuda
