// Low-level CPU kernels of the fused LeNet-5 path: plain loops over raw float buffers. No torch,
// no BLAS, no libm, no allocation, no threading: fused.cpp runs one shard of a batch per worker
// thread. Every floating-point sum runs in an order these loops fix, the matrix products and
// convolutions write each product-sum as an explicit fused multiply-add, and the build forbids
// the compiler to contract any other a*b+c (-ffp-contract=off), so results are the same bits on
// every CPU, whichever instruction set the loops were compiled or dispatched for.
//
// Layout: the kLanes images of a shard are the innermost dimension of every buffer. A feature
// map is [channel][y][x][lane], so each pixel is one contiguous vector of kLanes values and every
// inner loop below is a kLanes-wide vector operation. Fully connected activations are
// [feature][lane]. A shard with fewer images leaves the last lanes at zero input and zero
// gradient, so they add nothing to the weight gradients.
//
// Pooling inputs are "blocked": the four pixels of each 2x2 window lie in four blocks, block
// dy*2+dx holding pixel (2*py+dy, 2*px+dx) at position py*(size/2)+px, so pooling is
// element-wise over four blocks.
#pragma once

#include "options.h"

#include <cstdint>
#include <optional>

namespace lenet::kernels {

inline constexpr int64_t kLanes = 32;  // images per shard

// The two matrix products of the layers, over buffers whose rows are multiples of kLanes. Each
// output element is one sum in an order fixed here, whatever the CPU's vector width: no BLAS.
//
// c[i][0..n) = sum over j < k, in ascending j, of a(i, j) * b[j][0..n), for i < m, where
// a(i, j) = a[i * a_row + j * a_col] (a_col = 1: A row-major; a_row = 1: A transposed).
// Columns are computed a vector pair at a time (the rest one by one, in the same order); ldb/ldc
// are the row strides of b and c. Both products have one version per instruction set (vector
// width), picked at load time; every version gives the same bits.
void lane_gemm(int64_t m, int64_t k, int64_t n, const float* a, int64_t a_row, int64_t a_col,
               const float* b, int64_t ldb, float* c, int64_t ldc);

// c[i * ldc + j] = sum over q < length of d[i][q] * x[j][q], for i < m, j < n: kLanes partial
// sums (partial l adds the terms q = l mod kLanes in ascending q), then a fixed pairwise tree
// over the partials. length is a multiple of kLanes; ldd/ldx are the row strides of d and x.
void lane_dot(int64_t m, int64_t n, int64_t length, const float* d, int64_t ldd, const float* x,
              int64_t ldx, float* c, int64_t ldc);

// uint8 pixels -> (p / 255 - mean) / std as float32, each value rounded as those three float
// operations in that order; the one definition of the input normalisation.
void normalize_pixels(const uint8_t* pixels, int64_t count, float mean, float std, float* out);

// images [count,28,28] (count <= kLanes) -> x [32][32][kLanes], zero-padded by 2 on each side;
// lanes count.. are zero.
inline constexpr int64_t kPadded = 32;
void load_images(const float* images, int64_t count, float* x);

// conv1 (1 -> 6, 5x5, pad 2) from x into blocked a1 [6][4][14][14][kLanes]; weights [6][26]
// (25 taps then the bias).
void conv1_forward(const float* x, const float* weights, float* a1);
// d(loss)/d(weights) [6][26] from the pre-activation gradient da1 (blocked, as a1) and x.
void conv1_weight_grad(const float* x, const float* da1, float* grad);

// conv2 (6 -> 16, 5x5) as a matrix product over p1 [6][14][14][kLanes]: row c*25+ky*5+kx of
// cols [150][100*kLanes] holds the input pixel under that tap for each blocked output pixel.
// col2im_conv2 is its adjoint: it overwrites dp1 with the scattered sums of dcols.
void im2col_conv2(const float* p1, float* cols);
void col2im_conv2(const float* dcols, float* dp1);

// 2x2/2 pooling fused with the activation, for `channels` channels of `n` pooled values each:
// input channel c is in + 4*n*c (four blocks), output channel c is out + n*c. Max pooling stores
// the window position (0..3, the first on ties) of each maximum in argmax and activates only the
// maxima (both activations are increasing); average pooling activates `in` in place first (the
// backward pass needs those values).
void pool_forward(Activation activation, Pooling pooling, int64_t channels, int64_t n, float* in,
                  float* out, int32_t* argmax);

// Gradient of pool_forward: from d(loss)/d(out) to d(loss)/d(pre-activation), written into din
// (which, for average pooling, must be `in` holding the activated values).
void pool_backward(Activation activation, Pooling pooling, int64_t channels, int64_t n,
                   const float* dout, const float* out, const int32_t* argmax, float* din);

// x = act(x) for `count` values.
void activate(Activation activation, float* x, int64_t count);

// grad *= act'(y) where y = act(pre-activation), `count` values.
void activation_backward(Activation activation, const float* y, float* grad, int64_t count);

struct LossTotals {
  double loss_sum = 0.0;  // summed cross-entropy
  int64_t correct = 0;    // images whose arg-max is the label
};

// Softmax cross-entropy of logits [10][kLanes] for lanes 0..count-1; dlogits [10][kLanes] =
// scale * (softmax - one_hot(label)) there and 0 in the other lanes. A `competitor` is an
// eleventh, constant logit that takes part in the softmax (the 1998 RBF loss's -j); its own
// gradient is not written.
LossTotals softmax_cross_entropy(const float* logits, const int64_t* labels, int64_t count,
                                 float scale, float* dlogits,
                                 std::optional<float> competitor = std::nullopt);

// acc[j] += x[j] for j < count.
void add(float* acc, const float* x, int64_t count);

// out[c][r] = in[r][c] for an r x c row-major matrix.
void transpose(const float* in, int64_t rows, int64_t cols, float* out);

// torch::optim::SGD's update (dampening 0, no Nesterov) of `count` parameters: d = grad +
// weight_decay * param; momentum_buffer = d on the first step, momentum * buffer + d later;
// param -= learning_rate * (momentum != 0 ? buffer : d).
void sgd(float* param, float* momentum_buffer, const float* grad, int64_t count,
         float learning_rate, float momentum, float weight_decay, bool first_step);

}  // namespace lenet::kernels
