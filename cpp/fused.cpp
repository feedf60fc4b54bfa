#include "fused.h"

#include "fused1998.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <utility>

namespace lenet::fused {
namespace {

using kernels::lane_dot;
using kernels::lane_gemm;

constexpr int64_t kShard = kShardImages;
constexpr int64_t L = kernels::kLanes;
constexpr int64_t kLd2 = 100 * L;  // row stride of conv2's im2col and output
constexpr int64_t kAlign = 16;     // floats: 64 bytes
constexpr int64_t kUpdateSlice = 256 * kAlign;  // parameters per task of the SGD update

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

}  // namespace

torch::Tensor pack(const LeNet5Impl& model) {
  if (model.lenet1998() != nullptr) return fused1998::pack(model);
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
  if (model.lenet1998() != nullptr) return fused1998::unpack(params, model);
  torch::NoGradGuard no_grad;
  for (const auto& [layer, module] : layers(model)) {
    const auto m = matrix(params, layer);
    module->weight.copy_(m.narrow(1, 0, layer.in).reshape(module->weight.sizes()));
    module->bias.copy_(m.select(1, layer.in));
  }
}

Workspace::Workspace() {
  constexpr int64_t kPixels = kernels::kPadded * kernels::kPadded;
  const std::array<int64_t, 15> sizes = {
      kPixels * L, 6 * 784 * L, 6 * 196 * L, 6 * 196 * L, 151 * kLd2, 16 * kLd2, 401 * L,    121 * L,
      85 * L,      10 * L,      10 * L,      84 * L,      120 * L,    400 * L,   401 * L};
  std::array<float**, 15> parts = {&x,  &a1,     &p1,      &dp1,     &cols2, &a2,  &p2, &h1,
                                   &h2, &logits, &dlogits, &dh2,     &dh1,   &dp2, &xt};
  int64_t total = 0;
  for (const auto size : sizes) total += aligned(size);
  floats_ = torch::zeros({total}, torch::kFloat32);
  float* next = floats_.data_ptr<float>();
  for (size_t i = 0; i < parts.size(); ++i) {
    *parts[i] = next;
    next += aligned(sizes[i]);
  }
  indices_ = torch::zeros({aligned(6 * 196 * L) + 16 * 25 * L}, torch::kInt32);
  argmax1 = indices_.data_ptr<int32_t>();
  argmax2 = argmax1 + aligned(6 * 196 * L);
  // constant inputs of the bias columns
  std::fill(cols2 + 150 * kLd2, cols2 + 151 * kLd2, 1.0F);
  std::fill(p2 + 400 * L, p2 + 401 * L, 1.0F);
  std::fill(h1 + 120 * L, h1 + 121 * L, 1.0F);
  std::fill(h2 + 84 * L, h2 + 85 * L, 1.0F);
}

void forward(const float* params, const LeNet5Options& options, const float* images,
             int64_t count, Workspace& ws) {
  if (options.architecture == Architecture::LeNet5_1998) {
    return fused1998::forward(params, options.output, images, count, ws);
  }
  const auto act = options.activation;
  const auto pool = options.pooling;
  kernels::load_images(images, count, ws.x);
  kernels::conv1_forward(ws.x, weights(params, kConv1), ws.a1);
  kernels::pool_forward(act, pool, 6, 196 * L, ws.a1, ws.p1, ws.argmax1);

  kernels::im2col_conv2(ws.p1, ws.cols2);
  lane_gemm(16, 151, kLd2, weights(params, kConv2), 151, 1, ws.cols2, kLd2, ws.a2, kLd2);
  kernels::pool_forward(act, pool, 16, 25 * L, ws.a2, ws.p2, ws.argmax2);

  // fully connected layers on [features][lanes]; the last input row is the bias' constant 1
  lane_gemm(120, 401, L, weights(params, kFc1), 401, 1, ws.p2, L, ws.h1, L);
  kernels::activate(act, ws.h1, 120 * L);
  lane_gemm(84, 121, L, weights(params, kFc2), 121, 1, ws.h1, L, ws.h2, L);
  kernels::activate(act, ws.h2, 84 * L);
  lane_gemm(10, 85, L, weights(params, kFc3), 85, 1, ws.h2, L, ws.logits, L);
}

kernels::LossTotals forward_backward(const float* params, const LeNet5Options& options,
                                     const float* images, const int64_t* labels, int64_t count,
                                     int64_t batch, Workspace& ws, float* grad) {
  if (options.architecture == Architecture::LeNet5_1998) {
    return fused1998::forward_backward(params, options.output, images, labels, count, batch, ws,
                                       grad);
  }
  const auto act = options.activation;
  const auto pool = options.pooling;
  forward(params, options, images, count, ws);
  scheduling_point();
  const auto totals = kernels::softmax_cross_entropy(ws.logits, labels, count,
                                                     1.0F / static_cast<float>(batch), ws.dlogits);
  // fully connected layers: the weight gradient (a product over the shard's lanes, with the
  // layer's input transposed into xt), then the gradient of the layer's input (the weights
  // transposed: a_row = 1, a_col = the row stride)
  kernels::transpose(ws.h2, 85, L, ws.xt);
  lane_gemm(10, L, 85, ws.dlogits, L, 1, ws.xt, 85, grad + kFc3.offset, 85);
  lane_gemm(84, 10, L, weights(params, kFc3), 1, 85, ws.dlogits, L, ws.dh2, L);
  kernels::activation_backward(act, ws.h2, ws.dh2, 84 * L);
  kernels::transpose(ws.h1, 121, L, ws.xt);
  lane_gemm(84, L, 121, ws.dh2, L, 1, ws.xt, 121, grad + kFc2.offset, 121);
  lane_gemm(120, 84, L, weights(params, kFc2), 1, 121, ws.dh2, L, ws.dh1, L);
  kernels::activation_backward(act, ws.h1, ws.dh1, 120 * L);
  kernels::transpose(ws.p2, 401, L, ws.xt);
  lane_gemm(120, L, 401, ws.dh1, L, 1, ws.xt, 401, grad + kFc1.offset, 401);
  lane_gemm(400, 120, L, weights(params, kFc1), 1, 401, ws.dh1, L, ws.dp2, L);

  // conv2: the pre-activation gradient replaces a2, the im2col gradient replaces cols2
  kernels::pool_backward(act, pool, 16, 25 * L, ws.dp2, ws.p2, ws.argmax2, ws.a2);
  lane_dot(16, 151, kLd2, ws.a2, kLd2, ws.cols2, kLd2, grad + kConv2.offset, 151);
  lane_gemm(150, 16, kLd2, weights(params, kConv2), 1, 151, ws.a2, kLd2, ws.cols2, kLd2);
  scheduling_point();
  kernels::col2im_conv2(ws.cols2, ws.dp1);

  // conv1: no gradient for the input images
  kernels::pool_backward(act, pool, 6, 196 * L, ws.dp1, ws.p1, ws.argmax1, ws.a1);
  kernels::conv1_weight_grad(ws.x, ws.a1, grad + kConv1.offset);
  return totals;
}

Trainer::Trainer(const LeNet5Impl& model, const SgdOptions& sgd)
    : options_(model.options()), sgd_(sgd), params_(pack(model)),
      momentum_(torch::zeros({params_.numel()}, torch::kFloat32)),
      pool_(at::get_num_threads()),
      workspaces_(static_cast<size_t>(pool_.workers())) {}

kernels::LossTotals Trainer::accumulate(const float* images, const int64_t* labels,
                                        int64_t batch, bool update) {
  const int64_t shards = (batch + kShard - 1) / kShard;
  const int64_t parameters = params_.numel();
  if (grads_.numel() < shards * parameters) {
    grads_ = torch::empty({shards, parameters}, torch::kFloat32);
  }
  shard_totals_.assign(static_cast<size_t>(shards), {});

  float* params = params_.data_ptr<float>();
  float* grads = grads_.data_ptr<float>();
  pool_.run(shards, [&](int64_t shard, int64_t worker) {
    const int64_t first = shard * kShard;
    const int64_t count = std::min(kShard, batch - first);
    shard_totals_[static_cast<size_t>(shard)] = forward_backward(
        params, options_, images + first * 784, labels + first, count, batch,
        workspaces_[static_cast<size_t>(worker)], grads + shard * parameters);
  });

  // The shard gradients are summed in shard order and the update applied, slice by slice of
  // the parameters on the workers: every parameter sees the same operations in the same order.
  const int64_t slices = (parameters + kUpdateSlice - 1) / kUpdateSlice;
  float* momentum = momentum_.data_ptr<float>();
  pool_.run(slices, [&](int64_t slice, int64_t /*worker*/) {
    const int64_t begin = slice * kUpdateSlice;
    const int64_t length = std::min(kUpdateSlice, parameters - begin);
    for (int64_t shard = 1; shard < shards; ++shard) {
      kernels::add(grads + begin, grads + shard * parameters + begin, length);
    }
    if (!update) return;
    kernels::sgd(params + begin, momentum + begin, grads + begin, length,
                 static_cast<float>(sgd_.learning_rate), static_cast<float>(sgd_.momentum),
                 static_cast<float>(sgd_.weight_decay), first_step_);
  });
  if (update) first_step_ = false;

  kernels::LossTotals totals;
  for (const auto& shard : shard_totals_) {
    totals.loss_sum += shard.loss_sum;
    totals.correct += shard.correct;
  }
  return totals;
}

kernels::LossTotals Trainer::step(const float* images, const int64_t* labels, int64_t batch) {
  return accumulate(images, labels, batch, /*update=*/true);
}

torch::Tensor Trainer::gradient(const float* images, const int64_t* labels, int64_t batch) {
  accumulate(images, labels, batch, /*update=*/false);
  return grads_[0];
}

void Trainer::restore(const State& state) {
  const int64_t count = params_.numel();
  TORCH_CHECK_VALUE(state.params.numel() == count && state.momentum.numel() == count,
                    "a fused trainer state holds ", count, " parameters and buffers, got ",
                    state.params.numel(), " and ", state.momentum.numel());
  params_.copy_(state.params.reshape({count}));
  momentum_.copy_(state.momentum.reshape({count}));
  first_step_ = state.first_step;
}

namespace {

// Runs the forward pass of every shard of `images` (CPU float32 [N,1,28,28]) on a ShardPool of
// at::get_num_threads() workers, then visit(first image, count, workspace holding the shard's
// logits). No OpenMP: the extension links no OpenMP runtime of its own.
template <typename Visit>
void for_each_shard(const LeNet5Impl& model, const torch::Tensor& images, const Visit& visit) {
  TORCH_CHECK_VALUE(images.dim() == 4 && images.size(1) == 1 && images.size(2) == 28 &&
                        images.size(3) == 28 && images.scalar_type() == torch::kFloat32 &&
                        images.device().is_cpu(),
                    "the fused kernels take CPU float32 images [N,1,28,28], got ",
                    images.sizes());
  const auto x = images.contiguous();
  const auto params = pack(model);
  const int64_t n = x.size(0);
  const int64_t shards = (n + kShard - 1) / kShard;
  const float* p = params.data_ptr<float>();
  const float* pixels = x.data_ptr<float>();
  ShardPool pool(std::min<int64_t>(at::get_num_threads(), shards));
  std::vector<Workspace> workspaces(static_cast<size_t>(pool.workers()));
  pool.run(shards, [&](int64_t shard, int64_t worker) {
    auto& ws = workspaces[static_cast<size_t>(worker)];
    const int64_t first = shard * kShard;
    const int64_t count = std::min(kShard, n - first);
    forward(p, model.options(), pixels + first * 784, count, ws);
    visit(first, count, ws);
  });
}

}  // namespace

torch::Tensor logits(const LeNet5Impl& model, const torch::Tensor& images) {
  auto out = torch::empty({images.size(0), 10}, torch::kFloat32);
  float* result = out.data_ptr<float>();
  for_each_shard(model, images, [&](int64_t first, int64_t count, const Workspace& ws) {
    for (int64_t i = 0; i < count; ++i) {
      for (int64_t j = 0; j < 10; ++j) result[(first + i) * 10 + j] = ws.logits[j * L + i];
    }
  });
  return out;
}

Scores score(const LeNet5Impl& model, const torch::Tensor& images, const torch::Tensor& labels) {
  const bool with_loss = labels.defined();
  const auto y = with_loss ? labels.to(torch::kInt64).contiguous() : labels;
  const int64_t* label = with_loss ? y.data_ptr<int64_t>() : nullptr;
  const int64_t n = images.size(0);
  std::vector<double> shard_loss(static_cast<size_t>((n + kShard - 1) / kShard), 0.0);
  auto predictions = torch::empty({n}, torch::kInt64);
  int64_t* predicted = predictions.data_ptr<int64_t>();
  for_each_shard(model, images, [&](int64_t first, int64_t count, Workspace& ws) {
    if (with_loss) {
      shard_loss[static_cast<size_t>(first / kShard)] =
          fused1998::loss(model.options().output, ws.logits, label + first, count, 0.0F,
                          ws.dlogits)
              .loss_sum;
    }
    for (int64_t i = 0; i < count; ++i) {
      int64_t best = 0;
      for (int64_t j = 1; j < 10; ++j) {
        if (ws.logits[j * L + i] > ws.logits[best * L + i]) best = j;
      }
      predicted[first + i] = best;
    }
  });
  Scores scores;
  for (const double loss : shard_loss) scores.loss_sum += loss;
  scores.predictions = predictions;
  return scores;
}

}  // namespace lenet::fused
