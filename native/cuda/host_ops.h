// The kernels' per-pixel code (pixel_ops.cuh) run on the CPU, pixel by pixel in the kernels' order of operations:
// lets the tests check the GPU math against the reference on machines without a GPU. Not a production path.
#pragma once
#include "dfl_cuda.h"

namespace dfl::cuda {

void host_warp(const void* src, Dtype src_dtype, int src_h, int src_w, int channels, const Affine& matrix,
               const Box& box, Interp interp, float* dst);
void host_erode_dilate(const float* src, float* dst, int height, int width, double radius);
void host_gaussian_blur(const float* src, float* dst, int height, int width, double sigma, float floor_value);
void host_composite(void* plate, Dtype plate_dtype, int plate_h, int plate_w, int plate_channels, const float* face,
                    int face_channels, const float* mask, int height, int width, int origin_x, int origin_y,
                    int alpha_channel);

}  // namespace dfl::cuda
