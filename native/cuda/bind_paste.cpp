// Binding of the fused per-face paste (paste.cu).
#include "bind_common.h"

namespace dfl::cuda {

void bind_paste(py::module_& m) {
    m.def(
        "paste_face_workspace",
        [](int size, const std::vector<int>& bbox, double erode_px, double blur_sigma) {
            return paste_face_workspace(size, to_box(bbox), erode_px, blur_sigma);
        },
        py::arg("size"), py::arg("bbox"), py::arg("erode_px"), py::arg("blur_sigma"),
        "float32 elements of scratch that paste_face needs.");
    m.def(
        "paste_face",
        [](std::uintptr_t plate, const std::string& plate_dtype, int plate_h, int plate_w, int plate_channels,
           std::uintptr_t face, const std::string& face_dtype, std::uintptr_t mask, const std::string& mask_dtype,
           int size, const std::vector<double>& matrix, const std::vector<int>& bbox, double erode_px,
           double blur_sigma, const std::string& interpolation, std::optional<int> alpha_channel,
           std::uintptr_t final_mask, std::uintptr_t workspace, int device, std::uintptr_t stream) {
            const Dtype dtype = parse_dtype(plate_dtype);
            const PasteFace job{device_ptr<const void>(face), parse_dtype(face_dtype), device_ptr<const void>(mask),
                                parse_dtype(mask_dtype), size, to_affine(matrix), to_box(bbox), erode_px, blur_sigma,
                                parse_interp(interpolation), alpha_index(alpha_channel)};
            py::gil_scoped_release release;
            DeviceScope scope(device);
            check(launch_paste_face(device_ptr<void>(plate), dtype, plate_h, plate_w, plate_channels, job,
                                    device_ptr<float>(final_mask), device_ptr<float>(workspace), as_stream(stream)),
                  "paste_face");
        },
        py::arg("plate"), py::arg("plate_dtype"), py::arg("plate_h"), py::arg("plate_w"), py::arg("plate_channels"),
        py::arg("face"), py::arg("face_dtype"), py::arg("mask"), py::arg("mask_dtype"), py::arg("size"),
        py::arg("matrix"), py::arg("bbox"), py::arg("erode_px"), py::arg("blur_sigma"), py::arg("interpolation"),
        py::arg("alpha_channel"), py::arg("final_mask"), py::arg("workspace"), py::arg("device"), py::arg("stream"),
        "Warp face + mask into bbox, clip, erode/dilate, blur, zero below 1/255, composite; all on `stream`.");
}

}  // namespace dfl::cuda
