// The merge operations of docs/dev/merge-ops.md as plain C++ on raw C-contiguous buffers (no Python): the binding
// files (warp.cpp, mask.cpp, composite.cpp) call these with the GIL released, and the fused paste chains them.
#pragma once
#include <cstddef>
#include <string>

namespace dfl {

enum class Interp { kBilinear, kBicubic, kLanczos };

// "bilinear" | "bicubic" | "lanczos"; throws std::invalid_argument otherwise.
Interp parse_interpolation(const std::string& name);

// A box in destination pixels: x0 <= x < x1, y0 <= y < y1.
struct Box {
    int x0, y0, x1, y1;
    int width() const { return x1 - x0; }
    int height() const { return y1 - y0; }
};

// dst (box.height, box.width, channels) float32 = src (src_h, src_w, channels) sampled at
// (u, v) = (m0 x + m1 y + m2, m3 x + m4 y + m5) for each destination pixel (x, y) of the box; taps outside read 0.
// src is float32, or float16 bits when src_half.
void warp_affine(const void* src, bool src_half, int src_h, int src_w, int channels, const double matrix[6],
                 const Box& box, Interp interp, float* dst, int threads);

// dst = grey erosion (radius > 0) / dilation (radius < 0) of src over the disc dx^2 + dy^2 <= radius^2, outside
// pixels read 0; |radius| < 1 copies. dst must not alias src.
void erode_dilate(const float* src, float* dst, int height, int width, double radius, int threads);

// dst = separable Gaussian blur of src (taps -r..r, r = ceil(3 sigma), outside pixels read 0); sigma <= 0 copies.
// Output values below zero_below become 0 (pass -INFINITY to keep all). dst must not alias src.
void gaussian_blur(const float* src, float* dst, int height, int width, double sigma, float zero_below,
                   int threads);

// Blends face (height, width, face_channels; straight RGB in the first three) into the plate
// (plate_h, plate_w, plate_channels; premultiplied RGB first; float32, or float16 bits when plate_half) over the box at
// (origin_x, origin_y), clipped to the plate. alpha_channel < 0: the plate has no alpha. Pixels with mask <= 0 or NaN
// are not written.
void composite(void* plate, bool plate_half, int plate_h, int plate_w, int plate_channels, const float* face,
               int face_channels, const float* mask, int height, int width, int origin_x, int origin_y,
               int alpha_channel, int threads);

}  // namespace dfl
