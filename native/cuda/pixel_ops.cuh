// The per-pixel math of every kernel as __host__ __device__ functions: the kernels (warp.cu, mask.cu, composite.cu)
// run them on the GPU, host_ops.cu runs the very same code on the CPU so it can be checked without a GPU.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>

#include <cuda_fp16.h>

#include "dfl_cuda.h"

namespace dfl::cuda {

DFL_HOST_DEVICE inline float load_float(const float* p) { return *p; }
DFL_HOST_DEVICE inline float load_float(const __half* p) { return __half2float(*p); }
DFL_HOST_DEVICE inline void store_float(float* p, float v) { *p = v; }
DFL_HOST_DEVICE inline void store_float(__half* p, float v) { *p = __float2half_rn(v); }  // nearest even

// Products and sums rounded one at a time (the GPU would otherwise fuse them), as NumPy computes.
DFL_HOST_DEVICE inline float mul_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}

DFL_HOST_DEVICE inline float add_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}

DFL_HOST_DEVICE inline float sin_pi(float x) {
#ifdef __CUDA_ARCH__
    return sinpif(x);
#else
    return static_cast<float>(std::sin(3.14159265358979323846 * static_cast<double>(x)));
#endif
}

// floor(log2(v)) for v >= 1.
DFL_HOST_DEVICE inline int floor_log2(unsigned int v) {
#ifdef __CUDA_ARCH__
    return 31 - __clz(v);
#else
    return 31 - __builtin_clz(v);
#endif
}

// ---- warp ------------------------------------------------------------------------------------------------------

template <Interp I>
struct Kernel;

template <>
struct Kernel<Interp::kBilinear> {
    static constexpr int kTaps = 2;
    DFL_HOST_DEVICE static void weights(float t, float* w) {
        w[0] = 1.0f - t;
        w[1] = t;
    }
};

// Keys cubic with a = -0.75 (OpenCV's INTER_CUBIC); taps at distances 1 + t, t, 1 - t, 2 - t.
template <>
struct Kernel<Interp::kBicubic> {
    static constexpr int kTaps = 4;
    DFL_HOST_DEVICE static float keys(float d) {
        constexpr float a = -0.75f;
        d = fabsf(d);
        if (d <= 1.0f) return ((a + 2.0f) * d - (a + 3.0f)) * d * d + 1.0f;
        if (d < 2.0f) return ((a * d - 5.0f * a) * d + 8.0f * a) * d - 4.0f * a;
        return 0.0f;
    }
    DFL_HOST_DEVICE static void weights(float t, float* w) {
        w[0] = keys(1.0f + t);
        w[1] = keys(t);
        w[2] = keys(1.0f - t);
        w[3] = keys(2.0f - t);
    }
};

// Lanczos a = 4: sinc(d) sinc(d / 4) at distances d = t + 3 - k, normalised to sum 1.
template <>
struct Kernel<Interp::kLanczos> {
    static constexpr int kTaps = 8;
    DFL_HOST_DEVICE static float sinc(float x) {
        return x == 0.0f ? 1.0f : sin_pi(x) / (3.14159265358979323846f * x);
    }
    DFL_HOST_DEVICE static void weights(float t, float* w) {
        float sum = 0.0f;
        for (int k = 0; k < kTaps; ++k) {
            const float d = t + 3.0f - static_cast<float>(k);
            w[k] = sinc(d) * sinc(0.25f * d);
            sum += w[k];
        }
        const float inv = 1.0f / sum;
        for (int k = 0; k < kTaps; ++k) w[k] *= inv;
    }
};

// out[0..channels) = src (src_h, src_w, channels) interpolated at matrix @ (x, y, 1); taps outside read 0.
// Row by row as the reference: line = sum_kx wx * src, acc += wy * line.
template <typename T, Interp I>
DFL_HOST_DEVICE void warp_pixel(const T* __restrict__ src, int src_h, int src_w, int channels, const Affine& matrix,
                                double x, double y, float* __restrict__ out) {
    using K = Kernel<I>;
    constexpr int kTaps = K::kTaps;
    const double u = matrix.m[0] * x + matrix.m[1] * y + matrix.m[2];
    const double v = matrix.m[3] * x + matrix.m[4] * y + matrix.m[5];
    // Every tap outside the source (or a NaN coordinate): the constant 0 border.
    if (!(u > -kTaps && u < src_w + kTaps && v > -kTaps && v < src_h + kTaps)) {
        for (int c = 0; c < channels; ++c) out[c] = 0.0f;
        return;
    }
    const double fu = floor(u);
    const double fv = floor(v);
    float wx[kTaps];
    float wy[kTaps];
    K::weights(static_cast<float>(u - fu), wx);
    K::weights(static_cast<float>(v - fv), wy);
    const int bx = static_cast<int>(fu) - (kTaps / 2 - 1);
    const int by = static_cast<int>(fv) - (kTaps / 2 - 1);
    for (int c0 = 0; c0 < channels; c0 += 4) {
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll 2
        for (int ky = 0; ky < kTaps; ++ky) {
            const int yy = by + ky;
            if (yy < 0 || yy >= src_h) continue;
            const T* row = src + static_cast<size_t>(yy) * src_w * channels;
            float line[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
            for (int kx = 0; kx < kTaps; ++kx) {
                const int xx = bx + kx;
                if (xx < 0 || xx >= src_w) continue;
                const T* p = row + static_cast<size_t>(xx) * channels + c0;
#pragma unroll
                for (int c = 0; c < 4; ++c) {
                    if (c0 + c < channels) line[c] += wx[kx] * load_float(p + c);
                }
            }
#pragma unroll
            for (int c = 0; c < 4; ++c) acc[c] += wy[ky] * line[c];
        }
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            if (c0 + c < channels) out[c0 + c] = acc[c];
        }
    }
}

// ---- erode / dilate --------------------------------------------------------------------------------------------
// Each row gets a sparse table of window minima (maxima): level k holds the extreme of the 2^k pixels starting at x.
// An output pixel takes, for every row dy of the disc, the extreme of its span [x - hw(dy), x + hw(dy)] from two
// table reads, so the cost per pixel is O(radius) instead of O(radius^2), and the result is exact.

constexpr int kMaxLevels = 31;  // windows up to 2^30 pixels: any int width

struct Levels {
    const float* level[kMaxLevels];
};

template <bool kMax>
DFL_HOST_DEVICE inline float extreme(float a, float b) {
    return kMax ? fmaxf(a, b) : fminf(a, b);
}

// The largest integer s with s * s <= n (n >= 0).
DFL_HOST_DEVICE inline long long isqrt(long long n) {
    long long s = static_cast<long long>(sqrtf(static_cast<float>(n)));
    while (s * s > n) --s;
    while ((s + 1) * (s + 1) <= n) ++s;
    return s;
}

// Offsets (dx, dy) belong to the disc when dx^2 + dy^2 <= radius^2, i.e. <= floor(radius^2) for integers. A disc
// wider than the array's diagonal covers all of it plus the zero outside, so the radius is capped there.
inline long long disc_r2(double radius, int height, int width) {
    const double reach = std::fmin(std::fabs(radius), static_cast<double>(height) + width + 1.0);
    return static_cast<long long>(std::floor(reach * reach));
}

// Sparse-table levels above level 0 (the mask itself) that a disc of r2 needs on rows of `width`.
inline int table_levels(int width, long long r2) {
    const long long span = std::min<long long>(2 * isqrt(r2) + 1, width);
    int levels = 0;
    while ((2LL << levels) <= span) ++levels;
    return levels;
}

// next[y, x] = extreme of prev[y, x] and prev[y, x + half], where the window of 2 * half pixels fits in the row.
template <bool kMax>
DFL_HOST_DEVICE inline void table_level_pixel(const float* __restrict__ prev, float* __restrict__ next, int width,
                                              int half, int x, int y) {
    if (x + 2 * half > width) return;
    const size_t at = static_cast<size_t>(y) * width + x;
    next[at] = extreme<kMax>(prev[at], prev[at + half]);
}

template <bool kMax>
DFL_HOST_DEVICE float disc_pixel(const Levels& levels, int height, int width, long long r2, int x, int y) {
    const int reach = static_cast<int>(isqrt(r2));
    int dy0 = -reach;
    int dy1 = reach;
    bool touches_outside = false;
    if (y + dy0 < 0) {
        dy0 = -y;
        touches_outside = true;
    }
    if (y + dy1 > height - 1) {
        dy1 = height - 1 - y;
        touches_outside = true;
    }
    float acc = kMax ? -INFINITY : INFINITY;
    for (int dy = dy0; dy <= dy1; ++dy) {
        const int half_width = static_cast<int>(isqrt(r2 - static_cast<long long>(dy) * dy));
        int a = x - half_width;
        int b = x + half_width;
        if (a < 0) {
            a = 0;
            touches_outside = true;
        }
        if (b > width - 1) {
            b = width - 1;
            touches_outside = true;
        }
        const int k = floor_log2(static_cast<unsigned int>(b - a + 1));
        const float* row = levels.level[k] + static_cast<size_t>(y + dy) * width;
        acc = extreme<kMax>(acc, extreme<kMax>(row[a], row[b - (1 << k) + 1]));
    }
    return touches_outside ? extreme<kMax>(acc, 0.0f) : acc;
}

// ---- blur ------------------------------------------------------------------------------------------------------

inline int blur_reach(double sigma) { return static_cast<int>(std::ceil(3.0 * sigma)); }

// Unnormalised tap weight exp(-k^2 / (2 sigma^2)), in double.
DFL_HOST_DEVICE inline double gaussian_tap(int k, double sigma) {
    return exp(-static_cast<double>(k) * k / (2.0 * sigma * sigma));
}

// One 1-D pass at (x, y): along x when kAlongX, else along y; taps -r..r, pixels outside read 0.
template <bool kAlongX>
DFL_HOST_DEVICE float blur_pixel(const float* __restrict__ src, int height, int width,
                                 const float* __restrict__ weights, int r, int x, int y) {
    const int pos = kAlongX ? x : y;
    const int extent = kAlongX ? width : height;
    const ptrdiff_t step = kAlongX ? 1 : static_cast<ptrdiff_t>(width);
    const int k0 = pos - r < 0 ? -pos : -r;
    const int k1 = pos + r > extent - 1 ? extent - 1 - pos : r;
    const float* center = src + static_cast<size_t>(y) * width + x;
    float acc = 0.0f;
    for (int k = k0; k <= k1; ++k) acc += weights[k + r] * center[k * step];
    return acc;
}

DFL_HOST_DEVICE inline float zero_below(float v, float floor_value) { return v < floor_value ? 0.0f : v; }

// clip to [0, 1], NaN kept (as np.clip).
DFL_HOST_DEVICE inline float clip_unit(float v) { return v != v ? v : fminf(fmaxf(v, 0.0f), 1.0f); }

// ---- composite -------------------------------------------------------------------------------------------------

// One plate pixel p (premultiplied RGB first) blended with straight face pixel f by mask m; m <= 0 or NaN: untouched.
template <typename T>
DFL_HOST_DEVICE void composite_pixel(T* __restrict__ p, const float* __restrict__ f, float m, int alpha_channel) {
    if (!(m > 0.0f)) return;
    if (m >= 1.0f) {
        for (int c = 0; c < 3; ++c) store_float(p + c, f[c]);
        if (alpha_channel >= 0) store_float(p + alpha_channel, 1.0f);
        return;
    }
    const float keep = 1.0f - m;
    for (int c = 0; c < 3; ++c) store_float(p + c, add_rn(mul_rn(f[c], m), mul_rn(load_float(p + c), keep)));
    if (alpha_channel >= 0) store_float(p + alpha_channel, add_rn(m, mul_rn(load_float(p + alpha_channel), keep)));
}

// The part [i0, i1) x [j0, j1) of a (height, width) box at (origin_x, origin_y) that lies inside the plate.
struct ClippedBox {
    int i0, i1, j0, j1;
    DFL_HOST_DEVICE bool empty() const { return i1 <= i0 || j1 <= j0; }
};

inline ClippedBox clip_box(int plate_h, int plate_w, int height, int width, int origin_x, int origin_y) {
    return ClippedBox{std::max(0, -origin_y), std::min(height, plate_h - origin_y), std::max(0, -origin_x),
                      std::min(width, plate_w - origin_x)};
}

}  // namespace dfl::cuda
