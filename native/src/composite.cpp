// Premultiplied "over" of a straight face into the plate in place (float32 or float16 plates), and the fused
// per-face paste: warp face + mask into the plate box, clip, erode/dilate, blur, zero below 1/255, composite.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include <pybind11/stl.h>

#include "dfl_native.h"
#include "half.h"
#include "merge_core.h"
#include "numpy_args.h"
#include "parallel.h"

namespace py = pybind11;

namespace dfl {
namespace {

struct Float32Pixels {
    using Storage = float;
    float load(const float* p) const { return *p; }
    void store(float* p, float v) const { *p = v; }
};

struct Float16Pixels {
    using Storage = std::uint16_t;
    const float* table = half_table();
    float load(const std::uint16_t* p) const { return table[*p]; }
    void store(std::uint16_t* p, float v) const { *p = float_to_half(v); }
};

template <class Pixels>
void composite_typed(typename Pixels::Storage* plate, int plate_h, int plate_w, int plate_channels, const float* face,
                     int face_channels, const float* mask, int height, int width, int origin_x, int origin_y,
                     int alpha_channel, int threads) {
    // The part of the box inside the plate, in box coordinates.
    const int i0 = std::max(0, -origin_y);
    const int i1 = std::min(height, plate_h - origin_y);
    const int j0 = std::max(0, -origin_x);
    const int j1 = std::min(width, plate_w - origin_x);
    if (i1 <= i0 || j1 <= j0) return;
    parallel_for(i1 - i0, threads, 16, [&](int a, int b) {
        const Pixels px;
        for (int i = i0 + a; i < i0 + b; ++i) {
            const float* mrow = mask + static_cast<std::ptrdiff_t>(i) * width;
            const float* frow = face + static_cast<std::ptrdiff_t>(i) * width * face_channels;
            auto* prow = plate + (static_cast<std::ptrdiff_t>(origin_y + i) * plate_w + origin_x) * plate_channels;
            for (int j = j0; j < j1; ++j) {
                const float m = mrow[j];
                if (!(m > 0.0f)) continue;  // not written: NaN and Inf plate values survive bit for bit
                const float* f = frow + static_cast<std::ptrdiff_t>(j) * face_channels;
                auto* p = prow + static_cast<std::ptrdiff_t>(j) * plate_channels;
                if (m >= 1.0f) {
                    for (int c = 0; c < 3; ++c) px.store(p + c, f[c]);
                    if (alpha_channel >= 0) px.store(p + alpha_channel, 1.0f);
                    continue;
                }
                const float keep = 1.0f - m;
                for (int c = 0; c < 3; ++c) px.store(p + c, f[c] * m + px.load(p + c) * keep);
                if (alpha_channel >= 0) px.store(p + alpha_channel, m + px.load(p + alpha_channel) * keep);
            }
        }
    });
}

// Checks of a plate handed in for an in-place composite; returns true for float16.
bool check_plate(const py::array& plate, const std::optional<int>& alpha_channel) {
    const bool half = require_float32_or_16(plate, "plate", 3);
    require_writeable(plate, "plate");
    const int channels = dim(plate, 2);
    if (channels < 3) throw py::value_error("plate must have at least 3 channels (premultiplied RGB first)");
    if (alpha_channel && (*alpha_channel < 3 || *alpha_channel >= channels)) {
        throw py::value_error("alpha_channel must index a plate channel after RGB (3.." + std::to_string(channels - 1) +
                              "), got " + std::to_string(*alpha_channel));
    }
    return half;
}

void composite_py(py::array& plate, const py::array& face, const py::array& mask, const std::array<int, 2>& origin,
                  const std::optional<int>& alpha_channel, int threads) {
    const bool half = check_plate(plate, alpha_channel);
    require_float32(face, "face", 3);
    require_float32(mask, "mask", 2);
    const int h = dim(mask, 0);
    const int w = dim(mask, 1);
    if (dim(face, 0) != h || dim(face, 1) != w || dim(face, 2) != 3) {
        throw py::value_error("face must have shape (h, w, 3) matching mask (h, w)");
    }
    void* data = plate.mutable_data();
    const auto* f = static_cast<const float*>(face.data());
    const auto* m = static_cast<const float*>(mask.data());
    const int ph = dim(plate, 0);
    const int pw = dim(plate, 1);
    const int pc = dim(plate, 2);
    {
        py::gil_scoped_release release;
        composite(data, half, ph, pw, pc, f, 3, m, h, w, origin[0], origin[1], alpha_channel.value_or(-1), threads);
    }
}

py::array_t<float> paste_face_py(py::array& plate, const py::array& face, const py::array& mask,
                                 const MatrixArg& matrix, const std::array<int, 4>& bbox, double erode_px,
                                 double blur_sigma, const std::string& interpolation,
                                 const std::optional<int>& alpha_channel, int threads) {
    const bool half = check_plate(plate, alpha_channel);
    require_float32(face, "face", 3);
    require_float32(mask, "mask", 2);
    const int fh = dim(mask, 0);
    const int fw = dim(mask, 1);
    if (dim(face, 0) != fh || dim(face, 1) != fw || dim(face, 2) != 3) {
        throw py::value_error("face must have shape (r, r, 3) matching mask (r, r)");
    }
    double m[6];
    read_matrix(matrix, m);
    const Interp interp = parse_interpolation(interpolation);
    const Box box{bbox[0], bbox[1], bbox[2], bbox[3]};
    const int ph = dim(plate, 0);
    const int pw = dim(plate, 1);
    const int pc = dim(plate, 2);
    if (box.x0 < 0 || box.y0 < 0 || box.x1 > pw || box.y1 > ph || box.width() < 0 || box.height() < 0) {
        throw py::value_error("bbox must lie inside the plate with x0 <= x1 and y0 <= y1");
    }
    const int bh = box.height();
    const int bw = box.width();
    py::array_t<float> final_mask({bh, bw});
    float* out = final_mask.mutable_data();
    void* plate_data = plate.mutable_data();
    const auto* face_data = static_cast<const float*>(face.data());
    const auto* mask_data = static_cast<const float*>(mask.data());
    const int alpha = alpha_channel.value_or(-1);
    {
        py::gil_scoped_release release;
        const std::size_t face_pixels = static_cast<std::size_t>(fh) * fw;
        const std::size_t box_pixels = static_cast<std::size_t>(bh) * bw;
        // Face and mask as one 4-channel source, so one warp serves both.
        std::vector<float> source(face_pixels * 4);
        for (std::size_t k = 0; k < face_pixels; ++k) {
            std::memcpy(&source[4 * k], face_data + 3 * k, 3 * sizeof(float));
            source[4 * k + 3] = mask_data[k];
        }
        std::vector<float> warped(box_pixels * 4);
        warp_affine(source.data(), false, fh, fw, 4, m, box, interp, warped.data(), threads);
        std::vector<float> clipped(box_pixels);
        for (std::size_t k = 0; k < box_pixels; ++k) clipped[k] = std::min(std::max(warped[4 * k + 3], 0.0f), 1.0f);
        std::vector<float> shaped;
        const float* to_blur = clipped.data();
        if (std::fabs(erode_px) >= 1.0) {
            shaped.resize(box_pixels);
            erode_dilate(clipped.data(), shaped.data(), bh, bw, erode_px, threads);
            to_blur = shaped.data();
        }
        gaussian_blur(to_blur, out, bh, bw, blur_sigma, static_cast<float>(1.0 / 255.0), threads);
        composite(plate_data, half, ph, pw, pc, warped.data(), 4, out, bh, bw, box.x0, box.y0, alpha, threads);
    }
    return final_mask;
}

}  // namespace

void composite(void* plate, bool plate_half, int plate_h, int plate_w, int plate_channels, const float* face,
               int face_channels, const float* mask, int height, int width, int origin_x, int origin_y,
               int alpha_channel, int threads) {
    if (plate_half) {
        composite_typed<Float16Pixels>(static_cast<std::uint16_t*>(plate), plate_h, plate_w, plate_channels, face,
                                       face_channels, mask, height, width, origin_x, origin_y, alpha_channel,
                                       threads);
    } else {
        composite_typed<Float32Pixels>(static_cast<float*>(plate), plate_h, plate_w, plate_channels, face,
                                       face_channels, mask, height, width, origin_x, origin_y, alpha_channel,
                                       threads);
    }
}

void bind_composite(py::module_& m) {
    m.def("composite", &composite_py, py::arg("plate"), py::arg("face"), py::arg("mask"), py::arg("origin"),
          py::arg("alpha_channel"), py::arg("threads") = 0,
          "Blend face (h, w, 3) float32 into plate (H, W, C) float32|float16 in place over the box at origin "
          "(x0, y0), weighted by mask (h, w); pixels with mask <= 0 are not written.");
    m.def("paste_face", &paste_face_py, py::arg("plate"), py::arg("face"), py::arg("mask"), py::arg("matrix"),
          py::arg("bbox"), py::arg("erode_px"), py::arg("blur_sigma"), py::arg("interpolation"),
          py::arg("alpha_channel"), py::arg("threads") = 0,
          "Fused paste of an aligned face (r, r, 3) and mask (r, r) into plate in place over bbox (already grown "
          "and clipped to the plate); matrix maps plate pixels to aligned pixels. Returns the final mask of bbox.");
}

}  // namespace dfl
