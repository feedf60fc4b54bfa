// LeNet-5 as a libtorch module: the one LeNet of the project.
#pragma once

#include "options.h"

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lenet {

class Lenet1998Layers;  // lenet1998.h

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
// With architecture "lenet5-1998" the module holds the 1998 network instead (lenet1998.h).
class LeNet5Impl : public torch::nn::Module {
 public:
  LeNet5Impl(LeNet5Options options, at::Generator generator);

  torch::Tensor forward(const torch::Tensor& x);

  // Re-draw every parameter from `generator` with PyTorch's default distribution (uniform in
  // +-1/sqrt(fan_in)), so a run never touches the global RNG; the draws are turned into floats
  // by our own arithmetic, so the initial weights are the same bits on every CPU.
  void reset_parameters(at::Generator generator);

  const LeNet5Options& options() const { return options_; }

  // The loss of forward()'s scores: mean (or summed) cross-entropy; the 1998 network's own loss
  // for architecture "lenet5-1998" (Lenet1998Layers::loss).
  torch::Tensor loss(const torch::Tensor& scores, const torch::Tensor& labels,
                     bool sum = false) const;
  // Where the parameters are.
  torch::Device device() const;
  // Trainable parameters per layer, in layer order (module name, count).
  std::vector<std::pair<std::string, int64_t>> parameter_counts() const;
  // The layers of architecture "lenet5-1998" (nullptr for "lenet5", whose layers are conv1..fc3).
  const Lenet1998Layers* lenet1998() const { return lenet1998_.get(); }

  Layer conv1{nullptr};
  Layer conv2{nullptr};
  Layer fc1{nullptr};
  Layer fc2{nullptr};
  Layer fc3{nullptr};

 private:
  torch::Tensor activate(const torch::Tensor& x) const;
  torch::Tensor pool(const torch::Tensor& x) const;

  LeNet5Options options_;
  std::shared_ptr<Lenet1998Layers> lenet1998_;
};
TORCH_MODULE(LeNet5);

// Fills `tensor` with draws uniform in [-bound, bound) from `generator`, with our own arithmetic
// (the same bits on every CPU; lenet_cpp.reference.cpp_like_init draws the same numbers).
void fill_uniform(torch::Tensor& tensor, double bound, at::Generator& generator);

}  // namespace lenet
