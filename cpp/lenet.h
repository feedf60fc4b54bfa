// LeNet-5 as a libtorch module: the one LeNet of the project.
#pragma once

#include "options.h"

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace lenet {

// The learnable weight and bias of one conv or linear layer (registered as "weight"/"bias").
// Unlike torch::nn::Conv2d/Linear it draws no random numbers when built: LeNet5 initialises
// it from the run's own generator, never from the global one.
class LayerImpl : public torch::nn::Module {
 public:
  explicit LayerImpl(std::vector<int64_t> weight_shape);
  torch::Tensor weight;
  torch::Tensor bias;
};
TORCH_MODULE(Layer);

// conv 5x5 (pad 2) -> act -> pool -> conv 5x5 -> act -> pool -> FC 120 -> act -> FC 84 -> act -> FC 10.
// Input: float [N, 1, 28, 28], output: logits [N, 10]. Parameter names match lenet_cpp.reference.LeNet5.
// forward() is plain libtorch (autograd, any device); the fused CPU path lives in fused.h and
// the trainer picks between them.
class LeNet5Impl : public torch::nn::Module {
 public:
  LeNet5Impl(LeNet5Options options, at::Generator generator);

  torch::Tensor forward(const torch::Tensor& x);

  // Re-draw every parameter from `generator` with PyTorch's default distribution (uniform in
  // +-1/sqrt(fan_in)), so a run never touches the global RNG; the draws are turned into floats
  // by our own arithmetic, so the initial weights are the same bits on every CPU.
  void reset_parameters(at::Generator generator);

  const LeNet5Options& options() const { return options_; }

  Layer conv1{nullptr};
  Layer conv2{nullptr};
  Layer fc1{nullptr};
  Layer fc2{nullptr};
  Layer fc3{nullptr};

 private:
  torch::Tensor activate(const torch::Tensor& x) const;
  torch::Tensor pool(const torch::Tensor& x) const;

  LeNet5Options options_;
};
TORCH_MODULE(LeNet5);

}  // namespace lenet
