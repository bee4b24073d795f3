// Affine warp with inverse mapping (bilinear, Keys bicubic a = -0.75, Lanczos a = 4), float32 accumulation, rows in
// parallel; sources float32 or float16. Serves the paste (aligned face -> plate box) and the forward crop.
#include <array>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include <pybind11/stl.h>

#include "dfl_native.h"
#include "half.h"
#include "merge_core.h"
#include "numpy_args.h"
#include "parallel.h"

namespace py = pybind11;

namespace dfl {
namespace {

// Per-axis tap weights for the fractional position f in [0, 1): taps sit at floor(u) + kFirst ... + kTaps - 1.
struct Bilinear {
    static constexpr int kTaps = 2;
    static void weights(double f, float* w) {
        w[0] = static_cast<float>(1.0 - f);
        w[1] = static_cast<float>(f);
    }
};

struct Bicubic {
    static constexpr int kTaps = 4;
    static double keys(double d) {  // Keys cubic, a = -0.75
        constexpr double a = -0.75;
        d = std::fabs(d);
        if (d <= 1.0) return ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0;
        if (d < 2.0) return ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a;
        return 0.0;
    }
    static void weights(double f, float* w) {
        w[0] = static_cast<float>(keys(f + 1.0));
        w[1] = static_cast<float>(keys(f));
        w[2] = static_cast<float>(keys(f - 1.0));
        w[3] = static_cast<float>(keys(f - 2.0));
    }
};

// Lanczos a = 4 at distances t = f - o, o = -3..4: sinc(t) sinc(t / 4), normalised to sum 1.
// sin(pi t) = (-1)^o sin(pi f) is common to all taps up to the sign and cancels in the normalisation, and
// sin(pi t / 4) = sin(pi f / 4) cos(pi o / 4) - cos(pi f / 4) sin(pi o / 4): one sincos per axis instead of eight.
// Within 1e-9 of a tap the weights are that tap's delta (the exact limit, and free of 0/0).
struct Lanczos {
    static constexpr int kTaps = 8;
    static void weights(double f, float* w) {
        constexpr double h = 0.70710678118654752440;  // sqrt(1/2)
        static constexpr double kSign[8] = {-1, 1, -1, 1, -1, 1, -1, 1};
        static constexpr double kCos[8] = {-h, 0, h, 1, h, 0, -h, -1};
        static constexpr double kSin[8] = {-h, -1, -h, 0, h, 1, h, 0};
        if (f < 1e-9 || f > 1.0 - 1e-9) {
            for (int k = 0; k < kTaps; ++k) w[k] = 0.0f;
            w[f < 0.5 ? 3 : 4] = 1.0f;
            return;
        }
        const double angle = 0.78539816339744830962 * f;  // pi f / 4
        const double s = std::sin(angle);
        const double c = std::cos(angle);
        double raw[8];
        double sum = 0.0;
        for (int k = 0; k < kTaps; ++k) {
            const double t = f - static_cast<double>(k - 3);
            raw[k] = kSign[k] * (s * kCos[k] - c * kSin[k]) / (t * t);
            sum += raw[k];
        }
        const double inv = 1.0 / sum;
        for (int k = 0; k < kTaps; ++k) w[k] = static_cast<float>(raw[k] * inv);
    }
};

template <typename T>
struct Loader;

template <>
struct Loader<float> {
    float operator()(const float* p) const { return *p; }
};

template <>
struct Loader<std::uint16_t> {
    const float* table = half_table();
    float operator()(const std::uint16_t* p) const { return table[*p]; }
};

// Weighted sum of the N x N taps at (bx, by) for C > 0 channels known at compile time. Checked: some taps may fall
// outside the source and read 0; unchecked, the loops have fixed trip counts and the channel loop vectorises.
template <int N, int C, bool Checked, typename T>
inline void accumulate(const T* src, int src_h, int src_w, int bx, int by, const float* wx, const float* wy,
                       float* out) {
    const Loader<T> load;
    const std::ptrdiff_t row_stride = static_cast<std::ptrdiff_t>(src_w) * C;
    float acc[C] = {};
    for (int ky = 0; ky < N; ++ky) {
        const int yy = by + ky;
        if (Checked && (yy < 0 || yy >= src_h)) continue;
        const T* row = src + yy * row_stride;
        float line[C] = {};
        for (int kx = 0; kx < N; ++kx) {
            const int xx = bx + kx;
            if (Checked && (xx < 0 || xx >= src_w)) continue;
            const T* p = row + static_cast<std::ptrdiff_t>(xx) * C;
            for (int c = 0; c < C; ++c) line[c] += wx[kx] * load(p + c);
        }
        for (int c = 0; c < C; ++c) acc[c] += wy[ky] * line[c];
    }
    for (int c = 0; c < C; ++c) out[c] = acc[c];
}

#if defined(__GNUC__) || defined(__clang__)
// Four float lanes (GCC and Clang vector extensions: SSE on x86-64, NEON on ARM).
typedef float Float4 __attribute__((vector_size(16)));

// The unchecked sum for 5 channels (the merge warps face RGB + mask + coverage): channels 0-3 in one vector,
// channel 4 alone. Built with Python's flags (-fwrapv), GCC does not vectorise the plain loops of accumulate for 5
// channels (lanczos took twice as long as for 4). Each channel gets the same products and sums in the same order
// as in accumulate, so the result is bit-identical.
template <int N, typename T>
inline void accumulate5(const T* src, int src_w, int bx, int by, const float* wx, const float* wy, float* out) {
    const Loader<T> load;
    const std::ptrdiff_t row_stride = static_cast<std::ptrdiff_t>(src_w) * 5;
    const T* row = src + static_cast<std::ptrdiff_t>(by) * row_stride + static_cast<std::ptrdiff_t>(bx) * 5;
    Float4 acc = {0.0f, 0.0f, 0.0f, 0.0f};
    float acc4 = 0.0f;
    for (int ky = 0; ky < N; ++ky, row += row_stride) {
        Float4 line = {0.0f, 0.0f, 0.0f, 0.0f};
        float line4 = 0.0f;
        const T* p = row;
        for (int kx = 0; kx < N; ++kx, p += 5) {
            const Float4 v = {load(p), load(p + 1), load(p + 2), load(p + 3)};
            line += wx[kx] * v;
            line4 += wx[kx] * load(p + 4);
        }
        acc += wy[ky] * line;
        acc4 += wy[ky] * line4;
    }
    for (int c = 0; c < 4; ++c) out[c] = acc[c];
    out[4] = acc4;
}
#else
template <int N, typename T>
inline void accumulate5(const T* src, int src_w, int bx, int by, const float* wx, const float* wy, float* out) {
    accumulate<N, 5, false>(src, 0, src_w, bx, by, wx, wy, out);
}
#endif

// The same for a channel count known only at run time.
template <int N, typename T>
inline void accumulate_any(const T* src, int src_h, int src_w, int channels, int bx, int by, const float* wx,
                           const float* wy, float* out) {
    const Loader<T> load;
    const std::ptrdiff_t row_stride = static_cast<std::ptrdiff_t>(src_w) * channels;
    for (int c = 0; c < channels; ++c) {
        float sum = 0.0f;
        for (int ky = 0; ky < N; ++ky) {
            const int yy = by + ky;
            if (yy < 0 || yy >= src_h) continue;
            const T* row = src + yy * row_stride;
            float line = 0.0f;
            for (int kx = 0; kx < N; ++kx) {
                const int xx = bx + kx;
                if (xx < 0 || xx >= src_w) continue;
                line += wx[kx] * load(row + static_cast<std::ptrdiff_t>(xx) * channels + c);
            }
            sum += wy[ky] * line;
        }
        out[c] = sum;
    }
}

// One output row. C > 0: channel count known at compile time; C == 0: `channels` at run time.
template <class K, int C, typename T>
void warp_row(const T* src, int src_h, int src_w, int channels, const double* m, int x0, int y, int width,
              float* out) {
    constexpr int N = K::kTaps;
    constexpr int kFirst = -(N / 2 - 1);
    const int nc = C > 0 ? C : channels;
    float wx[N];
    float wy[N];
    for (int j = 0; j < width; ++j, out += nc) {
        const double x = static_cast<double>(x0 + j);
        const double u = m[0] * x + m[1] * y + m[2];
        const double v = m[3] * x + m[4] * y + m[5];
        // Every tap outside the source (NaN included): the constant 0 border.
        if (!(u > -N && u < src_w + N && v > -N && v < src_h + N)) {
            for (int c = 0; c < nc; ++c) out[c] = 0.0f;
            continue;
        }
        const double fu = std::floor(u);
        const double fv = std::floor(v);
        K::weights(u - fu, wx);
        K::weights(v - fv, wy);
        const int bx = static_cast<int>(fu) + kFirst;
        const int by = static_cast<int>(fv) + kFirst;
        if constexpr (C > 0) {
            if (bx >= 0 && by >= 0 && bx + N <= src_w && by + N <= src_h) {
                if constexpr (C == 5) {
                    accumulate5<N>(src, src_w, bx, by, wx, wy, out);
                } else {
                    accumulate<N, C, false>(src, src_h, src_w, bx, by, wx, wy, out);
                }
            } else {
                accumulate<N, C, true>(src, src_h, src_w, bx, by, wx, wy, out);
            }
        } else {
            accumulate_any<N>(src, src_h, src_w, channels, bx, by, wx, wy, out);
        }
    }
}

template <class K, int C, typename T>
void warp_rows(const T* src, int src_h, int src_w, int channels, const double* m, const Box& box, float* dst,
               int threads) {
    const int width = box.width();
    const std::ptrdiff_t out_stride = static_cast<std::ptrdiff_t>(width) * channels;
    parallel_for(box.height(), threads, 8, [&](int i0, int i1) {
        for (int i = i0; i < i1; ++i) {
            warp_row<K, C, T>(src, src_h, src_w, channels, m, box.x0, box.y0 + i, width, dst + i * out_stride);
        }
    });
}

// Fast paths for the channel counts the merge uses (1..4, and 5: face RGB + mask + coverage); any other count takes
// the run-time loop, which sums the taps in the same order (so results are bit-identical across the two).
template <class K, typename T>
void warp_kernel(const T* src, int src_h, int src_w, int channels, const double* m, const Box& box, float* dst,
                 int threads) {
    switch (channels) {
        case 1: return warp_rows<K, 1, T>(src, src_h, src_w, channels, m, box, dst, threads);
        case 2: return warp_rows<K, 2, T>(src, src_h, src_w, channels, m, box, dst, threads);
        case 3: return warp_rows<K, 3, T>(src, src_h, src_w, channels, m, box, dst, threads);
        case 4: return warp_rows<K, 4, T>(src, src_h, src_w, channels, m, box, dst, threads);
        case 5: return warp_rows<K, 5, T>(src, src_h, src_w, channels, m, box, dst, threads);
        default: return warp_rows<K, 0, T>(src, src_h, src_w, channels, m, box, dst, threads);
    }
}

template <typename T>
void warp_typed(const T* src, int src_h, int src_w, int channels, const double* m, const Box& box, Interp interp,
                float* dst, int threads) {
    switch (interp) {
        case Interp::kBilinear: return warp_kernel<Bilinear, T>(src, src_h, src_w, channels, m, box, dst, threads);
        case Interp::kBicubic: return warp_kernel<Bicubic, T>(src, src_h, src_w, channels, m, box, dst, threads);
        case Interp::kLanczos: return warp_kernel<Lanczos, T>(src, src_h, src_w, channels, m, box, dst, threads);
    }
}

py::array_t<float> warp_to_plate_py(const py::array& src, const MatrixArg& matrix, const std::array<int, 4>& bbox,
                                    const std::string& interpolation, int threads) {
    const bool half = require_float32_or_16(src, "src", 3);
    double m[6];
    read_matrix(matrix, m);
    const Interp interp = parse_interpolation(interpolation);
    const Box box{bbox[0], bbox[1], bbox[2], bbox[3]};
    if (box.width() < 0 || box.height() < 0) throw py::value_error("bbox must satisfy x0 <= x1 and y0 <= y1");
    const int channels = dim(src, 2);
    py::array_t<float> out({box.height(), box.width(), channels});
    float* dst = out.mutable_data();
    const void* data = src.data();
    {
        py::gil_scoped_release release;
        warp_affine(data, half, dim(src, 0), dim(src, 1), channels, m, box, interp, dst, threads);
    }
    return out;
}

}  // namespace

Interp parse_interpolation(const std::string& name) {
    if (name == "bilinear") return Interp::kBilinear;
    if (name == "bicubic") return Interp::kBicubic;
    if (name == "lanczos") return Interp::kLanczos;
    throw std::invalid_argument("interpolation must be bilinear, bicubic or lanczos, got '" + name + "'");
}

void warp_affine(const void* src, bool src_half, int src_h, int src_w, int channels, const double matrix[6],
                 const Box& box, Interp interp, float* dst, int threads) {
    if (box.width() <= 0 || box.height() <= 0 || channels <= 0) return;
    if (src_half) {
        warp_typed(static_cast<const std::uint16_t*>(src), src_h, src_w, channels, matrix, box, interp, dst, threads);
    } else {
        warp_typed(static_cast<const float*>(src), src_h, src_w, channels, matrix, box, interp, dst, threads);
    }
}

void bind_warp(py::module_& m) {
    m.def("warp_to_plate", &warp_to_plate_py, py::arg("src"), py::arg("matrix"), py::arg("bbox"),
          py::arg("interpolation"), py::arg("threads") = 0,
          "Warp src (h, w, C) float32|float16 into bbox (x0, y0, x1, y1) of the destination; matrix 2x3 maps "
          "destination pixels to source pixels. Returns (y1 - y0, x1 - x0, C) float32.");
}

}  // namespace dfl
