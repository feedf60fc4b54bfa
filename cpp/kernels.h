// Low-level CPU kernels of the fused LeNet-5 path: plain loops over raw float buffers, plus one
// matrix product through the BLAS that libtorch ships. No allocation, no threading: callers
// split the work (fused.cpp runs one shard of a batch per intra-op thread).
//
// Feature maps are "planar": channel c of image i is a row-major size x size plane starting at
// data + c * channel_stride + i * image_stride.
#pragma once

#include "lenet.h"

#include <cstdint>

namespace lenet::kernels {

// Row-major C[m,n] = op(A)[m,k] * op(B)[k,n], op = transpose when trans_* is set; every element
// of C is overwritten. lda/ldb/ldc are the row strides of the matrices as stored.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float* c, int64_t ldc);

struct Planes {
  float* data;
  int64_t size;            // plane height = width
  int64_t channel_stride;  // floats between channel c and c + 1 of the same image
  int64_t image_stride;    // floats between image i and i + 1 of the same channel
  // Blocked planes hold the pixels in pooling-window order: four blocks of (size/2)^2 values,
  // block dy*2+dx holding pixel (2*py+dy, 2*px+dx) at py*(size/2)+px. Others are row-major.
  bool blocked = false;
  float* plane(int64_t c, int64_t i) const { return data + c * channel_stride + i * image_stride; }
};

// conv1 (1 -> 6, 5x5, pad 2) as a matrix product: row ky*5+kx of `cols` (stride ld) holds, for
// image i, the input pixel under that tap for each output pixel, at column i*784 + the pixel's
// place in a blocked 28x28 plane (so that the product's output planes are blocked).
void im2col_conv1(const float* images, int64_t images_count, float* cols, int64_t ld);

// conv2 (6 -> 16, 5x5, no pad) over row-major 14x14 planes `p1`: row c*25 + ky*5 + kx of
// `cols`, column i*100 + the output pixel's place in a blocked 10x10 plane. col2im_conv2 is its
// adjoint: it overwrites the row-major planes `dp1` with the scattered sums.
void im2col_conv2(const Planes& p1, int64_t images_count, float* cols, int64_t ld);
void col2im_conv2(const float* dcols, int64_t ld, int64_t images_count, const Planes& dp1);

// 2x2/2 pooling fused with the activation, for `channels` x `images` planes of `in`. Max pooling
// stores the window position (0..3) of each maximum in `argmax` (first one on ties) and activates
// only the maxima (both activations are increasing); average pooling activates `in` in place
// first (the backward pass needs those values) and leaves `argmax` untouched.
void pool_forward(Activation activation, Pooling pooling, int64_t channels, int64_t images,
                  const Planes& in, const Planes& out, int32_t* argmax);

// Gradient of pool_forward: from d(loss)/d(out) to d(loss)/d(pre-activation), written into
// `din` (which, for average pooling, must be `in` holding the activated values).
void pool_backward(Activation activation, Pooling pooling, int64_t channels, int64_t images,
                   const Planes& dout, const Planes& out, const int32_t* argmax,
                   const Planes& din);

// x = act(x) on a rows x cols block with row stride ld.
void activate(Activation activation, float* x, int64_t rows, int64_t cols, int64_t ld);

// grad *= act'(y) where y = act(pre-activation), both rows x cols.
void activation_backward(Activation activation, const float* y, int64_t ld_y, float* grad,
                         int64_t ld_grad, int64_t rows, int64_t cols);

// acc[j] += x[j] for j < count.
void add(float* acc, const float* x, int64_t count);

// torch::optim::SGD's update (dampening 0, no Nesterov) of `count` parameters: d = grad +
// weight_decay * param; momentum_buffer = d on the first step, momentum * buffer + d later;
// param -= learning_rate * (momentum != 0 ? buffer : d).
void sgd(float* param, float* momentum_buffer, const float* grad, int64_t count,
         float learning_rate, float momentum, float weight_decay, bool first_step);

struct LossTotals {
  double loss_sum = 0.0;  // summed cross-entropy of the rows
  int64_t correct = 0;    // rows whose arg-max is the label
};

// Softmax cross-entropy of logits [rows, 10]; dlogits = scale * (softmax - one_hot(label)).
LossTotals softmax_cross_entropy(const float* logits, const int64_t* labels, int64_t rows,
                                 float scale, float* dlogits);

}  // namespace lenet::kernels
