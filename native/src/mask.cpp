// Mask operations of the paste: grey erosion / dilation over a disc and the separable Gaussian blur, rows in
// parallel, outside pixels read 0.
//
// Erosion over a disc = for each row offset dy, a 1-D minimum over the half-width hw(dy) of row y + dy, combined
// over dy. Each thread owns a contiguous band of output rows and streams the source rows that reach it: per source
// row, the 1-D minima of half-width 0, 1, ..., R come from one recursion (for h >= 1, min over [x-h-1, x+h+1] =
// min(m_h[x-1], m_h[x+1])), and each level is folded into the output rows whose disc row has that half-width.
// Cost O(R) per pixel and O(width + R) scratch per thread, for any radius.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "dfl_native.h"
#include "merge_core.h"
#include "numpy_args.h"
#include "parallel.h"

namespace py = pybind11;

namespace dfl {
namespace {

// Element-wise row kernels of the erosion (min) and dilation (max); `b < a ? b : a` vectorises to minps.
void fold_min(float* __restrict out, const float* __restrict row, int n) {
    for (int x = 0; x < n; ++x) out[x] = row[x] < out[x] ? row[x] : out[x];
}

void fold_max(float* __restrict out, const float* __restrict row, int n) {
    for (int x = 0; x < n; ++x) out[x] = row[x] > out[x] ? row[x] : out[x];
}

// b[i] = op(a[i - 1], a[i], a[i + 1]) for i in [from, to) (the first widening, half-width 0 -> 1). The loops index
// shifted pointers from 0: with -fwrapv, an `i - 1` subscript would not be recognised as contiguous.
void widen3_min(float* b, const float* a, int from, int to) {
    const float* __restrict left = a + from - 1;
    const float* __restrict mid = a + from;
    const float* __restrict right = a + from + 1;
    float* __restrict out = b + from;
    for (int k = 0; k < to - from; ++k) {
        const float m = mid[k] < left[k] ? mid[k] : left[k];
        out[k] = right[k] < m ? right[k] : m;
    }
}

void widen3_max(float* b, const float* a, int from, int to) {
    const float* __restrict left = a + from - 1;
    const float* __restrict mid = a + from;
    const float* __restrict right = a + from + 1;
    float* __restrict out = b + from;
    for (int k = 0; k < to - from; ++k) {
        const float m = mid[k] > left[k] ? mid[k] : left[k];
        out[k] = right[k] > m ? right[k] : m;
    }
}

// b[i] = op(a[i - 1], a[i + 1]) for i in [from, to) (half-width h -> h + 1 for h >= 1: the two windows overlap).
void widen_min(float* b, const float* a, int from, int to) {
    const float* __restrict left = a + from - 1;
    const float* __restrict right = a + from + 1;
    float* __restrict out = b + from;
    for (int k = 0; k < to - from; ++k) out[k] = right[k] < left[k] ? right[k] : left[k];
}

void widen_max(float* b, const float* a, int from, int to) {
    const float* __restrict left = a + from - 1;
    const float* __restrict right = a + from + 1;
    float* __restrict out = b + from;
    for (int k = 0; k < to - from; ++k) out[k] = right[k] > left[k] ? right[k] : left[k];
}

struct MinOp {
    static constexpr float identity() { return std::numeric_limits<float>::infinity(); }
    static void fold(float* out, const float* row, int n) { fold_min(out, row, n); }
    static void widen3(float* b, const float* a, int from, int to) { widen3_min(b, a, from, to); }
    static void widen(float* b, const float* a, int from, int to) { widen_min(b, a, from, to); }
};

struct MaxOp {
    static constexpr float identity() { return -std::numeric_limits<float>::infinity(); }
    static void fold(float* out, const float* row, int n) { fold_max(out, row, n); }
    static void widen3(float* b, const float* a, int from, int to) { widen3_max(b, a, from, to); }
    static void widen(float* b, const float* a, int from, int to) { widen_max(b, a, from, to); }
};

template <class Op>
void morphology(const float* src, float* dst, int height, int width, int R, const std::vector<int>& half_width,
                int threads) {
    // Row offsets dy (as dy + R) grouped by their half-width.
    std::vector<std::vector<int>> offsets_at(static_cast<std::size_t>(R) + 1);
    for (int k = 0; k <= 2 * R; ++k) offsets_at[static_cast<std::size_t>(half_width[k])].push_back(k - R);
    const int padded = width + 2 * R;
    parallel_for(height, threads, even_share(height, threads), [&](int y0, int y1) {
        // Rows whose disc reaches above or below the array see an outside pixel (offset (0, +-R)), which reads 0.
        for (int y = y0; y < y1; ++y) {
            const float start = (y - R < 0 || y + R >= height) ? 0.0f : Op::identity();
            std::fill(dst + static_cast<std::ptrdiff_t>(y) * width, dst + static_cast<std::ptrdiff_t>(y + 1) * width,
                      start);
        }
        std::vector<float> level(static_cast<std::size_t>(padded), 0.0f);
        std::vector<float> next(static_cast<std::size_t>(padded), 0.0f);
        const int s0 = std::max(0, y0 - R);
        const int s1 = std::min(height, y1 + R);
        for (int s = s0; s < s1; ++s) {
            std::fill(level.begin(), level.end(), 0.0f);
            std::memcpy(level.data() + R, src + static_cast<std::ptrdiff_t>(s) * width, sizeof(float) * width);
            for (int h = 0; h <= R; ++h) {
                const float* row = level.data() + R;
                for (const int dy : offsets_at[static_cast<std::size_t>(h)]) {
                    const int y = s - dy;
                    if (y < y0 || y >= y1) continue;
                    Op::fold(dst + static_cast<std::ptrdiff_t>(y) * width, row, width);
                }
                if (h == R) break;
                // Level h + 1 is needed on [h + 1, padded - h - 1) to serve [R, R + width) at level R.
                const float* a = level.data();
                float* b = next.data();
                if (h == 0) {  // [x-1, x+1] needs x itself; from level 1 on the two halves overlap
                    Op::widen3(b, a, 1, padded - 1);
                } else {
                    Op::widen(b, a, h + 1, padded - h - 1);
                }
                level.swap(next);
            }
        }
    });
}

// Gaussian taps k = -r..r, exp(-k^2 / (2 sigma^2)) normalised to sum 1 in double, then float.
std::vector<float> gaussian_taps(double sigma) {
    const int r = static_cast<int>(std::ceil(3.0 * sigma));
    std::vector<double> w(static_cast<std::size_t>(2 * r + 1));
    double sum = 0.0;
    for (int k = -r; k <= r; ++k) {
        w[static_cast<std::size_t>(k + r)] = std::exp(-static_cast<double>(k) * k / (2.0 * sigma * sigma));
        sum += w[static_cast<std::size_t>(k + r)];
    }
    std::vector<float> taps(w.size());
    for (std::size_t k = 0; k < w.size(); ++k) taps[k] = static_cast<float>(w[k] / sum);
    return taps;
}

void zero_below_threshold(float* data, std::size_t count, float zero_below) {
    for (std::size_t k = 0; k < count; ++k) {
        if (data[k] < zero_below) data[k] = 0.0f;
    }
}

// out[x] = w[0] c[x] + sum_{k=1..pairs} w[k] (c[x - k step] + c[x + k step]) for x in [0, width): both blur passes
// (step 1 along a padded row, step = width across rows). Blocks of 16 outputs stay in registers over all taps.
void symmetric_taps(float* __restrict out, const float* c, std::ptrdiff_t step, const float* w, int pairs,
                    int width) {
    constexpr int kBlock = 16;
    int x = 0;
    for (; x + kBlock <= width; x += kBlock) {
        float acc[kBlock];
        for (int i = 0; i < kBlock; ++i) acc[i] = w[0] * c[x + i];
        for (int k = 1; k <= pairs; ++k) {
            const float* __restrict a = c + x - k * step;
            const float* __restrict b = c + x + k * step;
            const float wk = w[k];
            for (int i = 0; i < kBlock; ++i) acc[i] += wk * (a[i] + b[i]);
        }
        for (int i = 0; i < kBlock; ++i) out[x + i] = acc[i];
    }
    for (; x < width; ++x) {
        float acc = w[0] * c[x];
        for (int k = 1; k <= pairs; ++k) acc += w[k] * (c[x - k * step] + c[x + k * step]);
        out[x] = acc;
    }
}

// out[x] += w * in[x].
void add_row(float* __restrict out, const float* __restrict in, float w, int width) {
    for (int x = 0; x < width; ++x) out[x] += w * in[x];
}

py::array_t<float> erode_dilate_py(const py::array& mask, double radius, int threads) {
    require_float32(mask, "mask", 2);
    const int h = dim(mask, 0);
    const int w = dim(mask, 1);
    py::array_t<float> out({h, w});
    const auto* src = static_cast<const float*>(mask.data());
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        erode_dilate(src, dst, h, w, radius, threads);
    }
    return out;
}

py::array_t<float> gaussian_blur_py(const py::array& mask, double sigma, int threads) {
    require_float32(mask, "mask", 2);
    const int h = dim(mask, 0);
    const int w = dim(mask, 1);
    py::array_t<float> out({h, w});
    const auto* src = static_cast<const float*>(mask.data());
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        gaussian_blur(src, dst, h, w, sigma, -std::numeric_limits<float>::infinity(), threads);
    }
    return out;
}

}  // namespace

void erode_dilate(const float* src, float* dst, int height, int width, double radius, int threads) {
    const std::size_t count = static_cast<std::size_t>(height) * width;
    double r = std::fabs(radius);
    if (!(r >= 1.0) || count == 0) {
        std::copy(src, src + count, dst);
        return;
    }
    // Beyond the array's diagonal every extra offset reads only outside pixels (0), already in the disc: same result.
    r = std::min(r, static_cast<double>(height) + width);
    const int R = static_cast<int>(std::floor(r));
    const double r2 = r * r;
    std::vector<int> half_width(static_cast<std::size_t>(2 * R + 1));
    for (int dy = -R; dy <= R; ++dy) {
        const double dy2 = static_cast<double>(dy) * dy;
        int hw = static_cast<int>(std::floor(std::sqrt(std::max(0.0, r2 - dy2))));
        while (hw > 0 && static_cast<double>(hw) * hw + dy2 > r2) --hw;
        while (static_cast<double>(hw + 1) * (hw + 1) + dy2 <= r2) ++hw;
        half_width[static_cast<std::size_t>(dy + R)] = hw;
    }
    if (radius > 0) {
        morphology<MinOp>(src, dst, height, width, R, half_width, threads);
    } else {
        morphology<MaxOp>(src, dst, height, width, R, half_width, threads);
    }
}

void gaussian_blur(const float* src, float* dst, int height, int width, double sigma, float zero_below,
                   int threads) {
    const std::size_t count = static_cast<std::size_t>(height) * width;
    if (!(sigma > 0.0) || count == 0) {
        std::copy(src, src + count, dst);
        zero_below_threshold(dst, count, zero_below);
        return;
    }
    const std::vector<float> taps = gaussian_taps(sigma);
    const int r = static_cast<int>(taps.size() / 2);
    const float* centre = taps.data() + r;  // centre[k] = weight of offset +-k
    std::vector<float> tmp(count);  // horizontal pass
    // Horizontal pass on a zero-padded copy of each row; offsets beyond the row length read only padding.
    const int reach_x = std::min(r, width - 1);
    parallel_for(height, threads, 16, [&](int y0, int y1) {
        std::vector<float> padded(static_cast<std::size_t>(width + 2 * reach_x), 0.0f);
        float* p = padded.data() + reach_x;
        for (int y = y0; y < y1; ++y) {
            std::memcpy(p, src + static_cast<std::ptrdiff_t>(y) * width, sizeof(float) * width);
            float* out = tmp.data() + static_cast<std::ptrdiff_t>(y) * width;
            symmetric_taps(out, p, 1, centre, reach_x, width);
        }
    });
    // Vertical pass (rows outside the array contribute nothing), with the threshold: offsets with rows on both
    // sides pair up; near the top or bottom the rest reach one side only.
    parallel_for(height, threads, 16, [&](int y0, int y1) {
        for (int y = y0; y < y1; ++y) {
            float* out = dst + static_cast<std::ptrdiff_t>(y) * width;
            const float* mid = tmp.data() + static_cast<std::ptrdiff_t>(y) * width;
            const int pairs = std::min(r, std::min(y, height - 1 - y));
            symmetric_taps(out, mid, width, centre, pairs, width);
            for (int k = pairs + 1; k <= r; ++k) {
                if (y - k >= 0) add_row(out, mid - static_cast<std::ptrdiff_t>(k) * width, centre[k], width);
                if (y + k < height) add_row(out, mid + static_cast<std::ptrdiff_t>(k) * width, centre[k], width);
            }
            zero_below_threshold(out, static_cast<std::size_t>(width), zero_below);
        }
    });
}

void bind_mask(py::module_& m) {
    m.def("erode_dilate", &erode_dilate_py, py::arg("mask"), py::arg("radius"), py::arg("threads") = 0,
          "Grey erosion (radius > 0) or dilation (radius < 0) of a (h, w) float32 mask over the disc "
          "dx^2 + dy^2 <= radius^2; outside pixels read 0; |radius| < 1 copies.");
    m.def("gaussian_blur", &gaussian_blur_py, py::arg("mask"), py::arg("sigma"), py::arg("threads") = 0,
          "Separable Gaussian blur of a (h, w) float32 mask, taps -ceil(3 sigma)..ceil(3 sigma), outside pixels "
          "read 0; sigma <= 0 copies.");
}

}  // namespace dfl
