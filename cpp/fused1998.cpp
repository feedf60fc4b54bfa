#include "fused1998.h"

#include "fixed_math.h"
#include "lenet1998.h"

#include <algorithm>
#include <array>

namespace lenet::fused1998 {
namespace {

using kernels::lane_dot;
using kernels::lane_gemm;

constexpr int64_t L = kernels::kLanes;
constexpr int64_t kLd2 = 100 * L;  // row stride of C3's im2col and output (as fused.cpp)
constexpr float kA = static_cast<float>(kSquashAmplitude);
constexpr float kS = static_cast<float>(kSquashSlope);

const float* weights(const float* params, const ParamBlock& layer) { return params + layer.offset; }

torch::Tensor matrix(const torch::Tensor& params, const ParamBlock& layer) {
  return params.narrow(0, layer.offset, layer.end() - layer.offset).view({layer.out, layer.ld()});
}

// f(a) = A tanh(S a), in place.
void squash(float* x, int64_t count) {
  for (int64_t j = 0; j < count; ++j) x[j] = kA * fixed_math::tanh(kS * x[j]);
}

// f'(a) from y = f(a): A S (1 - tanh^2) = S (A - y^2 / A).
inline float squash_derivative(float y) { return kS * (kA - y * y / kA); }

void squash_backward(const float* y, float* grad, int64_t count) {
  for (int64_t j = 0; j < count; ++j) grad[j] *= squash_derivative(y[j]);
}

// Trainable subsampling of `channels` maps of n pooled values (lanes included): in holds the
// four blocks of each map (activated values, blocked as for pooling, kernels.h); out[c][j] =
// f(coefficient_c * (((b0 + b1) + b2) + b3) + bias_c). block: [channels][coefficient, bias].
void subsample(int64_t channels, int64_t n, const float* in, const float* block, float* out) {
  for (int64_t c = 0; c < channels; ++c) {
    const float* b = in + 4 * n * c;
    const float coefficient = block[2 * c];
    const float bias = block[2 * c + 1];
    float* o = out + n * c;
    for (int64_t j = 0; j < n; ++j) {
      const float sum = ((b[j] + b[n + j]) + b[2 * n + j]) + b[3 * n + j];
      o[j] = kA * fixed_math::tanh(kS * (coefficient * sum + bias));
    }
  }
}

// Gradient of subsample: from dout and out (its result), the coefficient and bias gradients
// into grad ([channels][2]; each a sum over lanes of per-lane sums in ascending j, then the
// lanes in ascending order), and d(loss)/d(pre-activation) of the input into `in`, which holds
// the activated inputs on entry.
void subsample_backward(int64_t channels, int64_t n, const float* dout, const float* out,
                        const float* block, float* in, float* grad) {
  for (int64_t c = 0; c < channels; ++c) {
    float* b = in + 4 * n * c;
    const float coefficient = block[2 * c];
    const float* d = dout + n * c;
    const float* o = out + n * c;
    std::array<float, L> coefficient_sums{};
    std::array<float, L> bias_sums{};
    for (int64_t j = 0; j < n; ++j) {
      const float ds = d[j] * squash_derivative(o[j]);
      const float sum = ((b[j] + b[n + j]) + b[2 * n + j]) + b[3 * n + j];
      coefficient_sums[static_cast<size_t>(j % L)] += ds * sum;
      bias_sums[static_cast<size_t>(j % L)] += ds;
      const float g = ds * coefficient;
      for (int64_t k = 0; k < 4; ++k) b[k * n + j] = g * squash_derivative(b[k * n + j]);
    }
    float coefficient_total = 0.0F;
    float bias_total = 0.0F;
    for (int64_t lane = 0; lane < L; ++lane) {
      coefficient_total += coefficient_sums[static_cast<size_t>(lane)];
      bias_total += bias_sums[static_cast<size_t>(lane)];
    }
    grad[2 * c] = coefficient_total;
    grad[2 * c + 1] = bias_total;
  }
}

// C3's non-connected weights get a zero gradient (grad: [16][151], kC3's layout).
void mask_c3_gradient(float* grad) {
  for (int64_t m = 0; m < kC3Maps; ++m) {
    for (int64_t s = 0; s < kS2Maps; ++s) {
      if (kC3Table[static_cast<size_t>(m)][static_cast<size_t>(s)]) continue;
      std::fill(grad + m * kC3.ld() + s * 25, grad + m * kC3.ld() + (s + 1) * 25, 0.0F);
    }
  }
}

// The RBF codes [10][84], drawn once (lenet1998.h's rbf_codes()).
const std::array<float, 840>& codes() {
  static const std::array<float, 840> table = [] {
    std::array<float, 840> values{};
    const auto drawn = rbf_codes().contiguous();
    std::copy_n(drawn.data_ptr<float>(), values.size(), values.begin());
    return values;
  }();
  return table;
}

// scores[i][lane] = -sum over j ascending of (h[j][lane] - code[i][j])^2.
void rbf_forward(const float* h, float* scores) {
  const auto& code = codes();
  for (int64_t i = 0; i < 10; ++i) {
    std::array<float, L> y{};
    for (int64_t j = 0; j < 84; ++j) {
      const float w = code[static_cast<size_t>(i * 84 + j)];
      for (int64_t lane = 0; lane < L; ++lane) {
        const float difference = h[j * L + lane] - w;
        y[static_cast<size_t>(lane)] += difference * difference;
      }
    }
    for (int64_t lane = 0; lane < L; ++lane) scores[i * L + lane] = -y[static_cast<size_t>(lane)];
  }
}

// dh[j] = sum over i ascending of -dscores[i] * 2 (h[j] - code[i][j]).
void rbf_backward(const float* h, const float* dscores, float* dh) {
  const auto& code = codes();
  std::fill(dh, dh + 84 * L, 0.0F);
  for (int64_t i = 0; i < 10; ++i) {
    for (int64_t j = 0; j < 84; ++j) {
      const float w = code[static_cast<size_t>(i * 84 + j)];
      for (int64_t lane = 0; lane < L; ++lane) {
        dh[j * L + lane] += -dscores[i * L + lane] * (2.0F * (h[j * L + lane] - w));
      }
    }
  }
}

}  // namespace

torch::Tensor pack(const LeNet5Impl& model) {
  torch::NoGradGuard no_grad;
  const auto& net = *model.lenet1998();
  auto params = torch::empty({parameter_count(net.output_kind)}, torch::kFloat32);
  const auto put = [&params](const ParamBlock& block, const torch::Tensor& weight,
                             const torch::Tensor& bias) {
    auto m = matrix(params, block);
    m.narrow(1, 0, block.in).copy_(weight.reshape({block.out, block.in}));
    m.select(1, block.in).copy_(bias);
  };
  put(kC1, net.c1->weight, net.c1->bias);
  put(kS2, net.s2->coefficient, net.s2->bias);
  put(kC3, net.c3->weight * net.mask, net.c3->bias);
  put(kS4, net.s4->coefficient, net.s4->bias);
  put(kC5, net.c5->weight, net.c5->bias);
  put(kF6, net.f6->weight, net.f6->bias);
  if (net.output_kind == Output::Softmax) put(kOutput, net.output->weight, net.output->bias);
  return params;
}

void unpack(const torch::Tensor& params, LeNet5Impl& model) {
  torch::NoGradGuard no_grad;
  const auto& net = *model.lenet1998();
  const auto get = [&params](const ParamBlock& block, torch::Tensor weight, torch::Tensor bias) {
    const auto m = matrix(params, block);
    weight.copy_(m.narrow(1, 0, block.in).reshape(weight.sizes()));
    bias.copy_(m.select(1, block.in));
  };
  get(kC1, net.c1->weight, net.c1->bias);
  get(kS2, net.s2->coefficient, net.s2->bias);
  get(kC3, net.c3->weight, net.c3->bias);
  get(kS4, net.s4->coefficient, net.s4->bias);
  get(kC5, net.c5->weight, net.c5->bias);
  get(kF6, net.f6->weight, net.f6->bias);
  if (net.output_kind == Output::Softmax) get(kOutput, net.output->weight, net.output->bias);
}

void forward(const float* params, Output output, const float* images, int64_t count,
             fused::Workspace& ws) {
  kernels::load_images(images, count, ws.x);
  kernels::conv1_forward(ws.x, weights(params, kC1), ws.a1);
  squash(ws.a1, 6 * 784 * L);
  subsample(6, 196 * L, ws.a1, weights(params, kS2), ws.p1);

  kernels::im2col_conv2(ws.p1, ws.cols2);
  lane_gemm(16, 151, kLd2, weights(params, kC3), 151, 1, ws.cols2, kLd2, ws.a2, kLd2);
  squash(ws.a2, 16 * kLd2);
  subsample(16, 25 * L, ws.a2, weights(params, kS4), ws.p2);

  // C5 (a 5x5 convolution with a 1x1 output: a matrix product) and F6 on [features][lanes];
  // the last input row is the bias' constant 1
  lane_gemm(120, 401, L, weights(params, kC5), 401, 1, ws.p2, L, ws.h1, L);
  squash(ws.h1, 120 * L);
  lane_gemm(84, 121, L, weights(params, kF6), 121, 1, ws.h1, L, ws.h2, L);
  squash(ws.h2, 84 * L);
  if (output == Output::Softmax) {
    lane_gemm(10, 85, L, weights(params, kOutput), 85, 1, ws.h2, L, ws.logits, L);
  } else {
    rbf_forward(ws.h2, ws.logits);
  }
}

kernels::LossTotals forward_backward(const float* params, Output output, const float* images,
                                     const int64_t* labels, int64_t count, int64_t batch,
                                     fused::Workspace& ws, float* grad) {
  forward(params, output, images, count, ws);
  fused::scheduling_point();
  const auto totals =
      loss(output, ws.logits, labels, count, 1.0F / static_cast<float>(batch), ws.dlogits);
  if (output == Output::Softmax) {
    kernels::transpose(ws.h2, 85, L, ws.xt);
    lane_gemm(10, L, 85, ws.dlogits, L, 1, ws.xt, 85, grad + kOutput.offset, 85);
    lane_gemm(84, 10, L, weights(params, kOutput), 1, 85, ws.dlogits, L, ws.dh2, L);
  } else {
    rbf_backward(ws.h2, ws.dlogits, ws.dh2);
  }
  squash_backward(ws.h2, ws.dh2, 84 * L);
  kernels::transpose(ws.h1, 121, L, ws.xt);
  lane_gemm(84, L, 121, ws.dh2, L, 1, ws.xt, 121, grad + kF6.offset, 121);
  lane_gemm(120, 84, L, weights(params, kF6), 1, 121, ws.dh2, L, ws.dh1, L);
  squash_backward(ws.h1, ws.dh1, 120 * L);
  kernels::transpose(ws.p2, 401, L, ws.xt);
  lane_gemm(120, L, 401, ws.dh1, L, 1, ws.xt, 401, grad + kC5.offset, 401);
  lane_gemm(400, 120, L, weights(params, kC5), 1, 401, ws.dh1, L, ws.dp2, L);

  // S4 and C3: the pre-activation gradient replaces a2, the im2col gradient replaces cols2
  subsample_backward(16, 25 * L, ws.dp2, ws.p2, weights(params, kS4), ws.a2, grad + kS4.offset);
  lane_dot(16, 151, kLd2, ws.a2, kLd2, ws.cols2, kLd2, grad + kC3.offset, 151);
  mask_c3_gradient(grad + kC3.offset);
  lane_gemm(150, 16, kLd2, weights(params, kC3), 1, 151, ws.a2, kLd2, ws.cols2, kLd2);
  fused::scheduling_point();
  kernels::col2im_conv2(ws.cols2, ws.dp1);

  // S2 and C1: no gradient for the input images
  subsample_backward(6, 196 * L, ws.dp1, ws.p1, weights(params, kS2), ws.a1, grad + kS2.offset);
  kernels::conv1_weight_grad(ws.x, ws.a1, grad + kC1.offset);
  return totals;
}

kernels::LossTotals loss(Output output, const float* scores, const int64_t* labels, int64_t count,
                         float scale, float* dscores) {
  if (output == Output::Softmax) {
    return kernels::softmax_cross_entropy(scores, labels, count, scale, dscores);
  }
  // cross-entropy over the ten scores and an eleventh constant score -j
  return kernels::softmax_cross_entropy(scores, labels, count, scale, dscores,
                                        static_cast<float>(-kRbfJ));
}

}  // namespace lenet::fused1998
