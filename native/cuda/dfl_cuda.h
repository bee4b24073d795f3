// Launchers of the dfl_vfx CUDA kernels (native/cuda/*.cu) and the binding hooks of dfl_vfx._native_cuda.
// Every launcher only enqueues work on `stream` (no host synchronisation) and returns the launch status;
// all buffers are device pointers, C-contiguous (height, width, channels), and the semantics follow
// docs/dev/merge-ops.md.
#pragma once
#include <cstddef>
#include <string>

#include <cuda_runtime_api.h>

#ifdef __CUDACC__
#define DFL_HOST_DEVICE __host__ __device__
#else
#define DFL_HOST_DEVICE
#endif

namespace dfl::cuda {

enum class Dtype { kFloat32, kFloat16 };
enum class Interp { kBilinear, kBicubic, kLanczos };

// Maps destination pixel (x, y) to source pixel (u, v) = (m0 x + m1 y + m2, m3 x + m4 y + m5).
struct Affine {
    double m[6];
};

// Output box of a warp in destination pixel coordinates: x0 <= x < x1, y0 <= y < y1.
struct Box {
    int x0, y0, x1, y1;
    DFL_HOST_DEVICE int width() const { return x1 - x0; }
    DFL_HOST_DEVICE int height() const { return y1 - y0; }
};

// warp.cu: dst (box.height, box.width, channels) float32 = src (src_h, src_w, channels) sampled at matrix @ (x, y, 1).
cudaError_t launch_warp(const void* src, Dtype src_dtype, int src_h, int src_w, int channels, const Affine& matrix,
                        const Box& box, Interp interp, float* dst, cudaStream_t stream);

// mask.cu: erosion (radius > 0) or dilation (radius < 0) over a disc; workspace holds erode_dilate_workspace floats.
std::size_t erode_dilate_workspace(int height, int width, double radius);
cudaError_t launch_erode_dilate(const float* src, float* dst, int height, int width, double radius, float* workspace,
                                cudaStream_t stream);

// mask.cu: separable Gaussian blur (sigma <= 0 copies); output values below `floor_value` become 0 (pass -INFINITY
// to keep all).
std::size_t gaussian_blur_workspace(int height, int width, double sigma);
cudaError_t launch_gaussian_blur(const float* src, float* dst, int height, int width, double sigma, float floor_value,
                                 float* workspace, cudaStream_t stream);

// mask.cu: dst = clip(src[..., channel], 0, 1) of an interleaved (count, channels) buffer (NaN stays NaN).
cudaError_t launch_clip_channel(const float* src, int channels, int channel, float* dst, std::size_t count,
                                cudaStream_t stream);

// mask.cu: dst = src with values below `floor_value` set to 0.
cudaError_t launch_zero_below(const float* src, float* dst, std::size_t count, float floor_value, cudaStream_t stream);

// composite.cu: blends face (h, w, face_channels; RGB first) into plate (plate_h, plate_w, plate_channels) in place
// over the box at (origin_x, origin_y), clipped to the plate; alpha_channel < 0 means the plate has no alpha.
cudaError_t launch_composite(void* plate, Dtype plate_dtype, int plate_h, int plate_w, int plate_channels,
                             const float* face, int face_channels, const float* mask, int height, int width,
                             int origin_x, int origin_y, int alpha_channel, cudaStream_t stream);

// paste.cu: the fused per-face step. face (size, size, 3) and mask (size, size) in their own dtypes; the box is
// already computed (clipped to the plate); final_mask receives (box.height, box.width) float32.
struct PasteFace {
    const void* face;
    Dtype face_dtype;
    const void* mask;
    Dtype mask_dtype;
    int size;
    Affine plate_to_aligned;
    Box box;
    double erode_px;
    double blur_sigma;
    Interp interp;
    int alpha_channel;
};
std::size_t paste_face_workspace(int size, const Box& box, double erode_px, double blur_sigma);
cudaError_t launch_paste_face(void* plate, Dtype plate_dtype, int plate_h, int plate_w, int plate_channels,
                              const PasteFace& job, float* final_mask, float* workspace, cudaStream_t stream);

// info.cu: the nvcc version that compiled the kernels, e.g. "13.0.88".
std::string nvcc_version();

}  // namespace dfl::cuda
