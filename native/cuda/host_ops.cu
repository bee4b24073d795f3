// CPU execution of the kernels' per-pixel code (see host_ops.h): the same functions, loops instead of threads.
#include <cstring>
#include <vector>

#include "host_ops.h"
#include "pixel_ops.cuh"

namespace dfl::cuda {
namespace {

template <typename T, Interp I>
void warp_loop(const T* src, int src_h, int src_w, int channels, const Affine& matrix, const Box& box, float* dst) {
    for (int i = 0; i < box.height(); ++i) {
        for (int j = 0; j < box.width(); ++j) {
            warp_pixel<T, I>(src, src_h, src_w, channels, matrix, box.x0 + j, box.y0 + i,
                             dst + (static_cast<size_t>(i) * box.width() + j) * channels);
        }
    }
}

template <typename T>
void warp_typed(const T* src, int src_h, int src_w, int channels, const Affine& matrix, const Box& box, Interp interp,
                float* dst) {
    switch (interp) {
        case Interp::kBilinear: return warp_loop<T, Interp::kBilinear>(src, src_h, src_w, channels, matrix, box, dst);
        case Interp::kBicubic: return warp_loop<T, Interp::kBicubic>(src, src_h, src_w, channels, matrix, box, dst);
        case Interp::kLanczos: return warp_loop<T, Interp::kLanczos>(src, src_h, src_w, channels, matrix, box, dst);
    }
}

template <bool kMax>
void erode_dilate_typed(const float* src, float* dst, int height, int width, long long r2) {
    const size_t plane = static_cast<size_t>(height) * width;
    const int levels = table_levels(width, r2);
    std::vector<float> table(static_cast<size_t>(levels) * plane);
    Levels view{};
    view.level[0] = src;
    for (int k = 1; k <= levels; ++k) {
        float* next = table.data() + (k - 1) * plane;
        for (int y = 0; y < height; ++y) {
            for (int x = 0; x < width; ++x) table_level_pixel<kMax>(view.level[k - 1], next, width, 1 << (k - 1), x, y);
        }
        view.level[k] = next;
    }
    for (int y = 0; y < height; ++y) {
        for (int x = 0; x < width; ++x) {
            dst[static_cast<size_t>(y) * width + x] = disc_pixel<kMax>(view, height, width, r2, x, y);
        }
    }
}

template <typename T>
void composite_typed(T* plate, int plate_h, int plate_w, int plate_channels, const float* face, int face_channels,
                     const float* mask, int height, int width, int origin_x, int origin_y, int alpha_channel) {
    const ClippedBox part = clip_box(plate_h, plate_w, height, width, origin_x, origin_y);
    if (part.empty()) return;
    for (int i = part.i0; i < part.i1; ++i) {
        for (int j = part.j0; j < part.j1; ++j) {
            const size_t at = static_cast<size_t>(i) * width + j;
            composite_pixel(plate + (static_cast<size_t>(origin_y + i) * plate_w + (origin_x + j)) * plate_channels,
                            face + at * face_channels, mask[at], alpha_channel);
        }
    }
}

}  // namespace

void host_warp(const void* src, Dtype src_dtype, int src_h, int src_w, int channels, const Affine& matrix,
               const Box& box, Interp interp, float* dst) {
    if (src_dtype == Dtype::kFloat16) {
        warp_typed(static_cast<const __half*>(src), src_h, src_w, channels, matrix, box, interp, dst);
    } else {
        warp_typed(static_cast<const float*>(src), src_h, src_w, channels, matrix, box, interp, dst);
    }
}

void host_erode_dilate(const float* src, float* dst, int height, int width, double radius) {
    if (height <= 0 || width <= 0) return;
    if (!(std::fabs(radius) >= 1.0)) {
        std::memcpy(dst, src, static_cast<size_t>(height) * width * sizeof(float));
        return;
    }
    const long long r2 = disc_r2(radius, height, width);
    if (radius > 0) {
        erode_dilate_typed<false>(src, dst, height, width, r2);
    } else {
        erode_dilate_typed<true>(src, dst, height, width, r2);
    }
}

void host_gaussian_blur(const float* src, float* dst, int height, int width, double sigma, float floor_value) {
    const size_t plane = static_cast<size_t>(height) * width;
    if (!(sigma > 0.0)) {
        for (size_t k = 0; k < plane; ++k) dst[k] = zero_below(src[k], floor_value);
        return;
    }
    const int r = blur_reach(sigma);
    double total = 0.0;
    for (int k = -r; k <= r; ++k) total += gaussian_tap(k, sigma);
    std::vector<float> weights(2 * static_cast<size_t>(r) + 1);
    for (int k = -r; k <= r; ++k) weights[k + r] = static_cast<float>(gaussian_tap(k, sigma) / total);
    std::vector<float> between(plane);
    for (int y = 0; y < height; ++y) {
        for (int x = 0; x < width; ++x) {
            between[static_cast<size_t>(y) * width + x] = blur_pixel<true>(src, height, width, weights.data(), r, x, y);
        }
    }
    for (int y = 0; y < height; ++y) {
        for (int x = 0; x < width; ++x) {
            dst[static_cast<size_t>(y) * width + x] =
                zero_below(blur_pixel<false>(between.data(), height, width, weights.data(), r, x, y), floor_value);
        }
    }
}

void host_composite(void* plate, Dtype plate_dtype, int plate_h, int plate_w, int plate_channels, const float* face,
                    int face_channels, const float* mask, int height, int width, int origin_x, int origin_y,
                    int alpha_channel) {
    if (plate_dtype == Dtype::kFloat16) {
        composite_typed(static_cast<__half*>(plate), plate_h, plate_w, plate_channels, face, face_channels, mask,
                        height, width, origin_x, origin_y, alpha_channel);
    } else {
        composite_typed(static_cast<float*>(plate), plate_h, plate_w, plate_channels, face, face_channels, mask,
                        height, width, origin_x, origin_y, alpha_channel);
    }
}

}  // namespace dfl::cuda
