// The fast CPU path of LeNet-5: a hand-written forward and backward pass over raw buffers
// (conv1 as a direct convolution, conv2 and the linear layers as matrix products with the bias
// folded in, activation fused with pooling) and a hand-rolled SGD with momentum and weight decay.
//
// Same maths as LeNet5Impl::forward + cross-entropy + torch::optim::SGD; only the rounding of the
// sums differs. A batch is cut into shards of kShardImages images, run by a ShardPool; the shard
// gradients are added in shard order, so results do not depend on the number of threads, and
// the kernels fix every other sum's order (kernels.h), so they do not depend on the CPU either.
#pragma once

#include "kernels.h"
#include "lenet.h"
#include "shard_pool.h"

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace lenet::fused {

// A layer as one row-major matrix [out, in + 1]: the weights of an output unit in PyTorch's order
// (conv: input channel, ky, kx; fc1: channel, y, x), then its bias. The five matrices lie one
// after another in a flat parameter vector, starting at `offset`.
struct ParamBlock {
  int64_t out;
  int64_t in;
  int64_t offset;
  constexpr int64_t ld() const { return in + 1; }
  constexpr int64_t end() const { return offset + out * (in + 1); }
};
constexpr ParamBlock next_block(const ParamBlock& previous, int64_t out, int64_t in) {
  return {out, in, previous.end()};
}
inline constexpr ParamBlock kConv1{6, 25, 0};
inline constexpr ParamBlock kConv2 = next_block(kConv1, 16, 6 * 25);
inline constexpr ParamBlock kFc1 = next_block(kConv2, 120, 16 * 25);
inline constexpr ParamBlock kFc2 = next_block(kFc1, 84, 120);
inline constexpr ParamBlock kFc3 = next_block(kFc2, 10, 84);
inline constexpr int64_t kParameters = kFc3.end();
static_assert(kParameters == 61706, "LeNet-5 (this variant) has 61,706 parameters");

// Images per shard: the vector width of the kernels' layout (kernels.h). A batch of 64 still
// splits over two threads.
inline constexpr int64_t kShardImages = kernels::kLanes;

// Module parameters <-> flat layout (float32, CPU). The functions below take architecture
// "lenet5-1998" too and hand it to fused1998.h (its own flat layout).
torch::Tensor pack(const LeNet5Impl& model);
void unpack(const torch::Tensor& params, LeNet5Impl& model);

// Buffers for one shard, in the kernels' layout (kernels.h).
class Workspace {
 public:
  Workspace();
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  Workspace(Workspace&&) noexcept = default;
  Workspace& operator=(Workspace&&) noexcept = default;

  float *x, *a1, *p1, *dp1, *cols2, *a2, *p2, *h1, *h2, *logits, *dlogits, *dh2, *dh1, *dp2, *xt;
  int32_t *argmax1, *argmax2;

 private:
  torch::Tensor floats_;
  torch::Tensor indices_;
};

// Forward pass of `count` <= kShardImages images [count,1,28,28]; logits land in ws.logits
// ([10][kShardImages]: class-major).
void forward(const float* params, const LeNet5Options& options, const float* images,
             int64_t count, Workspace& ws);

// Forward and backward pass of one shard. Writes into `grad` (the flat layout) the gradient
// of the summed loss of the shard divided by `batch` (the whole batch's size).
kernels::LossTotals forward_backward(const float* params, const LeNet5Options& options,
                                     const float* images, const int64_t* labels, int64_t count,
                                     int64_t batch, Workspace& ws, float* grad);

// Minibatch SGD on the flat parameters: torch::optim::SGD's update (dampening 0, no Nesterov).
// The shards of a step run on at::get_num_threads() workers (see ShardPool).
class Trainer {
 public:
  Trainer(const LeNet5Impl& model, const SgdOptions& sgd);

  // One step on a batch: images contiguous float32 [batch,1,28,28], labels int64 [batch].
  // Returns the summed loss and the number of correct arg-max predictions before the update.
  kernels::LossTotals step(const float* images, const int64_t* labels, int64_t batch);

  // The gradient of the batch's mean loss at the current parameters, without an update:
  // [parameters] in the flat layout, valid until the next call.
  torch::Tensor gradient(const float* images, const int64_t* labels, int64_t batch);

  // The learning rate of the next steps (a schedule changes it between steps).
  void set_learning_rate(double learning_rate) { sgd_.learning_rate = learning_rate; }

  // Copy the current parameters into `model`.
  void store(LeNet5Impl& model) const { unpack(params_, model); }

  // The optimiser's state, for checkpoints: flat parameters, momentum buffers, and whether the
  // next step is the first (torch::optim::SGD starts its buffers from the first gradient).
  struct State {
    torch::Tensor params;
    torch::Tensor momentum;
    bool first_step;
  };
  State state() const { return {params_.clone(), momentum_.clone(), first_step_}; }
  void restore(const State& state);

 private:
  // Runs every shard's forward and backward pass; grads_[0] then holds their sum, in shard
  // order. With `update`, the SGD step follows.
  kernels::LossTotals accumulate(const float* images, const int64_t* labels, int64_t batch,
                                 bool update);

  LeNet5Options options_;
  SgdOptions sgd_;
  torch::Tensor params_;
  torch::Tensor momentum_;
  torch::Tensor grads_;  // [shards, parameters of the flat layout]
  ShardPool pool_;
  std::vector<Workspace> workspaces_;  // one per worker
  std::vector<kernels::LossTotals> shard_totals_;
  bool first_step_ = true;
};

// Logits [N,10] for CPU float32 images [N,1,28,28] (no autograd), shards spread over the
// intra-op threads.
torch::Tensor logits(const LeNet5Impl& model, const torch::Tensor& images);

// Arg-max predictions (int64 [N], the first maximum on ties) of CPU float32 images [N,1,28,28]
// and, when `labels` (integer [N]) is defined, their summed cross-entropy; shard sums are added
// in shard order.
struct Scores {
  double loss_sum = 0.0;
  torch::Tensor predictions;
};
Scores score(const LeNet5Impl& model, const torch::Tensor& images, const torch::Tensor& labels);

}  // namespace lenet::fused
