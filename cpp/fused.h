// The fast CPU path of LeNet-5: a hand-written forward and backward pass over raw buffers
// (conv1 as a direct convolution, conv2 and the linear layers as matrix products with the bias
// folded in, activation fused with pooling) and a hand-rolled SGD with momentum and weight decay.
//
// Same maths as LeNet5Impl::forward + cross-entropy + torch::optim::SGD; only the rounding of the
// sums differs. A batch is cut into shards of kShardImages images, run by a ShardPool; the shard
// gradients are added in shard order, so results do not depend on the number of threads.
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
  int64_t ld() const { return in + 1; }
  int64_t end() const { return offset + out * (in + 1); }
};
inline constexpr ParamBlock kConv1{6, 25, 0};
inline constexpr ParamBlock kConv2{16, 150, 156};
inline constexpr ParamBlock kFc1{120, 400, 2572};
inline constexpr ParamBlock kFc2{84, 120, 50692};
inline constexpr ParamBlock kFc3{10, 84, 60856};
inline constexpr int64_t kParameters = 61706;

// Images per shard: the vector width of the kernels' layout (kernels.h). A batch of 64 still
// splits over two threads.
inline constexpr int64_t kShardImages = kernels::kLanes;

// Whether the fused kernels are used on the CPU: yes unless the environment variable
// LENET_CPP_KERNELS is "libtorch" (then training and inference use libtorch's autograd ops; for
// comparisons and benchmarks).
bool enabled();

// Module parameters <-> flat layout (float32, CPU).
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

  float *x, *a1, *p1, *dp1, *cols2, *a2, *p2, *h1, *h2, *logits, *dlogits, *dh2, *dh1, *dp2, *dw2t;
  int32_t *argmax1, *argmax2;

 private:
  torch::Tensor floats_;
  torch::Tensor indices_;
};

// Forward pass of `count` <= kShardImages images [count,1,28,28]; logits land in ws.logits
// ([10][kShardImages]: class-major).
void forward(const float* params, const LeNet5Options& options, const float* images,
             int64_t count, Workspace& ws);

// Forward and backward pass of one shard. Writes into `grad` (kParameters floats) the gradient
// of the summed loss of the shard divided by `batch` (the whole batch's size).
kernels::LossTotals forward_backward(const float* params, const LeNet5Options& options,
                                     const float* images, const int64_t* labels, int64_t count,
                                     int64_t batch, Workspace& ws, float* grad);

struct SgdOptions {
  double learning_rate = 0.01;
  double momentum = 0.0;
  double weight_decay = 0.0;
};

// Minibatch SGD on the flat parameters: torch::optim::SGD's update (dampening 0, no Nesterov).
// The shards of a step run on at::get_num_threads() workers (see ShardPool).
class Trainer {
 public:
  Trainer(const LeNet5Impl& model, const SgdOptions& sgd);

  // One step on a batch: images contiguous float32 [batch,1,28,28], labels int64 [batch].
  // Returns the summed loss and the number of correct arg-max predictions before the update.
  kernels::LossTotals step(const float* images, const int64_t* labels, int64_t batch);

  // Copy the current parameters into `model`.
  void store(LeNet5Impl& model) const { unpack(params_, model); }

 private:
  void update(int64_t shards);

  LeNet5Options options_;
  SgdOptions sgd_;
  torch::Tensor params_;
  torch::Tensor momentum_;
  torch::Tensor grads_;  // [shards, kParameters]
  ShardPool pool_;
  std::vector<Workspace> workspaces_;  // one per worker
  std::vector<kernels::LossTotals> shard_totals_;
  bool first_step_ = true;
};

// Logits [N,10] for CPU float32 images [N,1,28,28] (no autograd), shards spread over the
// intra-op threads.
torch::Tensor logits(const LeNet5Impl& model, const torch::Tensor& images);

}  // namespace lenet::fused
