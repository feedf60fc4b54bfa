#include "fused.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <string>
#include <utility>

namespace lenet::fused {
namespace {

using kernels::gemm;
using kernels::Planes;

constexpr int64_t kShard = kShardImages;
constexpr int64_t kLd1 = kShard * 28 * 28;  // row stride of conv1's im2col and output planes
constexpr int64_t kLdP1 = kShard * 14 * 14;  // row stride of the pooled conv1 planes
constexpr int64_t kLd2 = kShard * 10 * 10;  // row stride of conv2's im2col and output planes
constexpr int64_t kAlign = 16;               // floats: 64 bytes

int64_t aligned(int64_t floats) { return (floats + kAlign - 1) / kAlign * kAlign; }

// (block, layer) pairs; Model is LeNet5Impl or const LeNet5Impl.
template <typename Model>
auto layers(Model& model) {
  using Pointer = decltype(model.conv1.get());
  return std::array<std::pair<ParamBlock, Pointer>, 5>{{{kConv1, model.conv1.get()},
                                                        {kConv2, model.conv2.get()},
                                                        {kFc1, model.fc1.get()},
                                                        {kFc2, model.fc2.get()},
                                                        {kFc3, model.fc3.get()}}};
}

torch::Tensor matrix(const torch::Tensor& params, const ParamBlock& layer) {
  return params.narrow(0, layer.offset, layer.end() - layer.offset).view({layer.out, layer.ld()});
}

const float* weights(const float* params, const ParamBlock& layer) { return params + layer.offset; }

Planes conv1_planes(float* data) { return {data, 28, kLd1, 28 * 28, /*blocked=*/true}; }
Planes pool1_planes(float* data) { return {data, 14, kLdP1, 14 * 14}; }
Planes conv2_planes(float* data) { return {data, 10, kLd2, 10 * 10, /*blocked=*/true}; }
// pooled conv2 output, one row of fc1 input per image in (channel, y, x) order, bias column last
Planes pool2_planes(float* data, int64_t row_stride) { return {data, 5, 5 * 5, row_stride}; }

}  // namespace

bool enabled() {
  const char* kernels = std::getenv("LENET_CPP_KERNELS");
  return kernels == nullptr || std::string(kernels) != "libtorch";
}

torch::Tensor pack(const LeNet5Impl& model) {
  torch::NoGradGuard no_grad;
  auto params = torch::empty({kParameters}, torch::kFloat32);
  for (const auto& [layer, module] : layers(model)) {
    auto m = matrix(params, layer);
    m.narrow(1, 0, layer.in).copy_(module->weight.reshape({layer.out, layer.in}));
    m.select(1, layer.in).copy_(module->bias);
  }
  return params;
}

void unpack(const torch::Tensor& params, LeNet5Impl& model) {
  torch::NoGradGuard no_grad;
  for (const auto& [layer, module] : layers(model)) {
    const auto m = matrix(params, layer);
    module->weight.copy_(m.narrow(1, 0, layer.in).reshape(module->weight.sizes()));
    module->bias.copy_(m.select(1, layer.in));
  }
}

Workspace::Workspace() {
  const std::array<int64_t, 14> sizes = {26 * kLd1,         6 * kLd1,          6 * kLdP1,
                                         6 * kLdP1,         151 * kLd2,        16 * kLd2,
                                         kShard * 401,      kShard * 121,      kShard * 85,
                                         kShard * 10,       kShard * 10,       kShard * 84,
                                         kShard * 120,      kShard * 400};
  int64_t total = 0;
  for (const auto size : sizes) total += aligned(size);
  floats_ = torch::zeros({total}, torch::kFloat32);
  std::array<float**, 14> parts = {&cols1, &a1, &p1, &dp1, &cols2, &a2, &p2,
                                   &h1, &h2, &logits, &dlogits, &dh2, &dh1, &dp2};
  float* next = floats_.data_ptr<float>();
  for (size_t i = 0; i < parts.size(); ++i) {
    *parts[i] = next;
    next += aligned(sizes[i]);
  }
  indices_ = torch::zeros({aligned(6 * kLdP1) + 16 * kShard * 25}, torch::kInt32);
  argmax1 = indices_.data_ptr<int32_t>();
  argmax2 = argmax1 + aligned(6 * kLdP1);
  // constant inputs of the bias columns
  std::fill(cols1 + 25 * kLd1, cols1 + 26 * kLd1, 1.0F);
  std::fill(cols2 + 150 * kLd2, cols2 + 151 * kLd2, 1.0F);
  for (int64_t i = 0; i < kShard; ++i) {
    p2[i * 401 + 400] = 1.0F;
    h1[i * 121 + 120] = 1.0F;
    h2[i * 85 + 84] = 1.0F;
  }
}

void forward(const float* params, const LeNet5Options& options, const float* images,
             int64_t count, Workspace& ws) {
  const auto act = options.activation;
  const auto pool = options.pooling;
  kernels::im2col_conv1(images, count, ws.cols1, kLd1);
  gemm(false, false, 6, count * 784, 26, weights(params, kConv1), 26, ws.cols1, kLd1, ws.a1, kLd1);
  kernels::pool_forward(act, pool, 6, count, conv1_planes(ws.a1), pool1_planes(ws.p1), ws.argmax1);

  kernels::im2col_conv2(pool1_planes(ws.p1), count, ws.cols2, kLd2);
  gemm(false, false, 16, count * 100, 151, weights(params, kConv2), 151, ws.cols2, kLd2, ws.a2,
       kLd2);
  kernels::pool_forward(act, pool, 16, count, conv2_planes(ws.a2), pool2_planes(ws.p2, 401),
                        ws.argmax2);

  gemm(false, true, count, 120, 401, ws.p2, 401, weights(params, kFc1), 401, ws.h1, 121);
  kernels::activate(act, ws.h1, count, 120, 121);
  gemm(false, true, count, 84, 121, ws.h1, 121, weights(params, kFc2), 121, ws.h2, 85);
  kernels::activate(act, ws.h2, count, 84, 85);
  gemm(false, true, count, 10, 85, ws.h2, 85, weights(params, kFc3), 85, ws.logits, 10);
}

kernels::LossTotals forward_backward(const float* params, const LeNet5Options& options,
                                     const float* images, const int64_t* labels, int64_t count,
                                     int64_t batch, Workspace& ws, float* grad) {
  const auto act = options.activation;
  const auto pool = options.pooling;
  forward(params, options, images, count, ws);
  const auto totals = kernels::softmax_cross_entropy(ws.logits, labels, count,
                                                     1.0F / static_cast<float>(batch), ws.dlogits);
  // fully connected layers: weight gradient, then the gradient of the layer's input
  gemm(true, false, 10, 85, count, ws.dlogits, 10, ws.h2, 85, grad + kFc3.offset, 85);
  gemm(false, false, count, 84, 10, ws.dlogits, 10, weights(params, kFc3), 85, ws.dh2, 84);
  kernels::activation_backward(act, ws.h2, 85, ws.dh2, 84, count, 84);
  gemm(true, false, 84, 121, count, ws.dh2, 84, ws.h1, 121, grad + kFc2.offset, 121);
  gemm(false, false, count, 120, 84, ws.dh2, 84, weights(params, kFc2), 121, ws.dh1, 120);
  kernels::activation_backward(act, ws.h1, 121, ws.dh1, 120, count, 120);
  gemm(true, false, 120, 401, count, ws.dh1, 120, ws.p2, 401, grad + kFc1.offset, 401);
  gemm(false, false, count, 400, 120, ws.dh1, 120, weights(params, kFc1), 401, ws.dp2, 400);

  // conv2: the pre-activation gradient replaces a2, the im2col gradient replaces cols2
  kernels::pool_backward(act, pool, 16, count, pool2_planes(ws.dp2, 400), pool2_planes(ws.p2, 401),
                         ws.argmax2, conv2_planes(ws.a2));
  gemm(false, true, 16, 151, count * 100, ws.a2, kLd2, ws.cols2, kLd2, grad + kConv2.offset, 151);
  gemm(true, false, 150, count * 100, 16, weights(params, kConv2), 151, ws.a2, kLd2, ws.cols2,
       kLd2);
  kernels::col2im_conv2(ws.cols2, kLd2, count, pool1_planes(ws.dp1));

  // conv1: no gradient for the input images
  kernels::pool_backward(act, pool, 6, count, pool1_planes(ws.dp1), pool1_planes(ws.p1), ws.argmax1,
                         conv1_planes(ws.a1));
  gemm(false, true, 6, 26, count * 784, ws.a1, kLd1, ws.cols1, kLd1, grad + kConv1.offset, 26);
  return totals;
}

Trainer::Trainer(const LeNet5Impl& model, const SgdOptions& sgd)
    : options_(model.options()), sgd_(sgd), params_(pack(model)),
      momentum_(torch::zeros({kParameters}, torch::kFloat32)),
      pool_(at::get_num_threads()),
      workspaces_(static_cast<size_t>(pool_.workers())) {}

kernels::LossTotals Trainer::step(const float* images, const int64_t* labels, int64_t batch) {
  const int64_t shards = (batch + kShard - 1) / kShard;
  if (grads_.numel() < shards * kParameters) {
    grads_ = torch::empty({shards, kParameters}, torch::kFloat32);
  }
  shard_totals_.assign(static_cast<size_t>(shards), {});

  const float* params = params_.data_ptr<float>();
  float* grads = grads_.data_ptr<float>();
  pool_.run(shards, [&](int64_t shard, int64_t worker) {
    const int64_t first = shard * kShard;
    const int64_t count = std::min(kShard, batch - first);
    shard_totals_[static_cast<size_t>(shard)] = forward_backward(
        params, options_, images + first * 784, labels + first, count, batch,
        workspaces_[static_cast<size_t>(worker)], grads + shard * kParameters);
  });
  update(shards);

  kernels::LossTotals totals;
  for (const auto& shard : shard_totals_) {
    totals.loss_sum += shard.loss_sum;
    totals.correct += shard.correct;
  }
  return totals;
}

void Trainer::update(int64_t shards) {
  float* grad = grads_.data_ptr<float>();
  for (int64_t shard = 1; shard < shards; ++shard) {
    kernels::add(grad, grad + shard * kParameters, kParameters);
  }
  kernels::sgd(params_.data_ptr<float>(), momentum_.data_ptr<float>(), grad, kParameters,
               static_cast<float>(sgd_.learning_rate), static_cast<float>(sgd_.momentum),
               static_cast<float>(sgd_.weight_decay), first_step_);
  first_step_ = false;
}

torch::Tensor logits(const LeNet5Impl& model, const torch::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 1 && images.size(2) == 28 &&
                  images.size(3) == 28 && images.scalar_type() == torch::kFloat32 &&
                  images.device().is_cpu(),
              "fused::logits expects CPU float32 images [N,1,28,28], got ", images.sizes());
  const auto x = images.contiguous();
  const auto params = pack(model);
  const int64_t n = x.size(0);
  auto out = torch::empty({n, 10}, torch::kFloat32);
  const int64_t shards = (n + kShard - 1) / kShard;
  const float* p = params.data_ptr<float>();
  const float* pixels = x.data_ptr<float>();
  float* result = out.data_ptr<float>();
  at::parallel_for(0, shards, 1, [&](int64_t begin, int64_t end) {
    Workspace ws;
    for (int64_t shard = begin; shard < end; ++shard) {
      const int64_t first = shard * kShard;
      const int64_t count = std::min(kShard, n - first);
      forward(p, model.options(), pixels + first * 784, count, ws);
      std::copy(ws.logits, ws.logits + count * 10, result + first * 10);
    }
  });
  return out;
}

}  // namespace lenet::fused
