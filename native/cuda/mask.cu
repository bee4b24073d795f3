// Mask kernels: grey erosion/dilation over a disc (row sparse tables, see pixel_ops.cuh), the separable Gaussian
// blur, and the element-wise clip / floor used by the paste. float32, pixels outside the array read 0.
#include "common.cuh"

namespace dfl::cuda {
namespace {

template <bool kMax>
__global__ void table_level_kernel(const float* __restrict__ prev, float* __restrict__ next, int height, int width,
                                   int half) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= width || y >= height) return;
    table_level_pixel<kMax>(prev, next, width, half, x, y);
}

template <bool kMax>
__global__ void disc_kernel(Levels levels, int height, int width, long long r2, float* __restrict__ dst) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= width || y >= height) return;
    dst[static_cast<size_t>(y) * width + x] = disc_pixel<kMax>(levels, height, width, r2, x, y);
}

template <bool kMax>
void enqueue_erode_dilate(const float* src, float* dst, int height, int width, long long r2, float* workspace,
                          cudaStream_t stream) {
    const size_t plane = static_cast<size_t>(height) * width;
    Levels table{};
    table.level[0] = src;
    for (int k = 1, levels = table_levels(width, r2); k <= levels; ++k) {
        float* next = workspace + (k - 1) * plane;
        table_level_kernel<kMax>
            <<<grid_2d(width, height), block_2d(), 0, stream>>>(table.level[k - 1], next, height, width, 1 << (k - 1));
        table.level[k] = next;
    }
    disc_kernel<kMax><<<grid_2d(width, height), block_2d(), 0, stream>>>(table, height, width, r2, dst);
}

// Normalised weights of taps k = -r..r, summed in double by one block.
__global__ void gaussian_weights_kernel(int r, double sigma, float* __restrict__ weights) {
    __shared__ double partial[kThreads1d];
    double sum = 0.0;
    for (int k = -r + static_cast<int>(threadIdx.x); k <= r; k += blockDim.x) sum += gaussian_tap(k, sigma);
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (unsigned int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
        __syncthreads();
    }
    const double total = partial[0];
    for (int k = -r + static_cast<int>(threadIdx.x); k <= r; k += blockDim.x) {
        weights[k + r] = static_cast<float>(gaussian_tap(k, sigma) / total);
    }
}

template <bool kAlongX>
__global__ void blur_pass_kernel(const float* __restrict__ src, float* __restrict__ dst, int height, int width,
                                 const float* __restrict__ weights, int r, float floor_value) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= width || y >= height) return;
    dst[static_cast<size_t>(y) * width + x] =
        zero_below(blur_pixel<kAlongX>(src, height, width, weights, r, x, y), floor_value);
}

__global__ void zero_below_kernel(const float* __restrict__ src, float* __restrict__ dst, size_t count,
                                  float floor_value) {
    const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < count) dst[i] = zero_below(src[i], floor_value);
}

__global__ void clip_channel_kernel(const float* __restrict__ src, int channels, int channel, float* __restrict__ dst,
                                    size_t count) {
    const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < count) dst[i] = clip_unit(src[i * channels + channel]);
}

}  // namespace

std::size_t erode_dilate_workspace(int height, int width, double radius) {
    if (!(std::fabs(radius) >= 1.0) || height <= 0 || width <= 0) return 0;
    return static_cast<size_t>(table_levels(width, disc_r2(radius, height, width))) * height * width;
}

cudaError_t launch_erode_dilate(const float* src, float* dst, int height, int width, double radius, float* workspace,
                                cudaStream_t stream) {
    if (height <= 0 || width <= 0) return cudaSuccess;
    const size_t bytes = static_cast<size_t>(height) * width * sizeof(float);
    if (!(std::fabs(radius) >= 1.0)) return cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream);
    const long long r2 = disc_r2(radius, height, width);
    if (radius > 0) {
        enqueue_erode_dilate<false>(src, dst, height, width, r2, workspace, stream);
    } else {
        enqueue_erode_dilate<true>(src, dst, height, width, r2, workspace, stream);
    }
    return launch_status();
}

std::size_t gaussian_blur_workspace(int height, int width, double sigma) {
    if (!(sigma > 0.0) || height <= 0 || width <= 0) return 0;
    return static_cast<size_t>(height) * width + 2 * static_cast<size_t>(blur_reach(sigma)) + 1;
}

cudaError_t launch_gaussian_blur(const float* src, float* dst, int height, int width, double sigma, float floor_value,
                                 float* workspace, cudaStream_t stream) {
    if (height <= 0 || width <= 0) return cudaSuccess;
    if (!(sigma > 0.0)) return launch_zero_below(src, dst, static_cast<size_t>(height) * width, floor_value, stream);
    const int r = blur_reach(sigma);
    float* between = workspace;
    float* weights = workspace + static_cast<size_t>(height) * width;
    gaussian_weights_kernel<<<1, kThreads1d, 0, stream>>>(r, sigma, weights);
    blur_pass_kernel<true>
        <<<grid_2d(width, height), block_2d(), 0, stream>>>(src, between, height, width, weights, r, -INFINITY);
    blur_pass_kernel<false>
        <<<grid_2d(width, height), block_2d(), 0, stream>>>(between, dst, height, width, weights, r, floor_value);
    return launch_status();
}

cudaError_t launch_zero_below(const float* src, float* dst, std::size_t count, float floor_value,
                              cudaStream_t stream) {
    if (count == 0) return cudaSuccess;
    zero_below_kernel<<<blocks_1d(count, kThreads1d), kThreads1d, 0, stream>>>(src, dst, count, floor_value);
    return launch_status();
}

cudaError_t launch_clip_channel(const float* src, int channels, int channel, float* dst, std::size_t count,
                                cudaStream_t stream) {
    if (count == 0) return cudaSuccess;
    clip_channel_kernel<<<blocks_1d(count, kThreads1d), kThreads1d, 0, stream>>>(src, channels, channel, dst, count);
    return launch_status();
}

}  // namespace dfl::cuda
