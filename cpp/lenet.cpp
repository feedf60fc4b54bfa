#include "lenet.h"

#include "fused.h"

#include <cmath>
#include <stdexcept>

namespace lenet {

Activation parse_activation(const std::string& name) {
  if (name == "relu") return Activation::ReLU;
  if (name == "tanh") return Activation::Tanh;
  throw std::invalid_argument("activation must be 'relu' or 'tanh', got '" + name + "'");
}

Pooling parse_pooling(const std::string& name) {
  if (name == "max") return Pooling::Max;
  if (name == "avg") return Pooling::Avg;
  throw std::invalid_argument("pooling must be 'max' or 'avg', got '" + name + "'");
}

std::string to_string(Activation activation) {
  return activation == Activation::ReLU ? "relu" : "tanh";
}

std::string to_string(Pooling pooling) { return pooling == Pooling::Max ? "max" : "avg"; }

LeNet5Impl::LeNet5Impl(LeNet5Options options) : options_(options) {
  namespace nn = torch::nn;
  conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(1, 6, 5).padding(2)));
  conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(6, 16, 5)));
  fc1 = register_module("fc1", nn::Linear(16 * 5 * 5, 120));
  fc2 = register_module("fc2", nn::Linear(120, 84));
  fc3 = register_module("fc3", nn::Linear(84, 10));
}

torch::Tensor LeNet5Impl::activate(const torch::Tensor& x) const {
  return options_.activation == Activation::ReLU ? torch::relu(x) : torch::tanh(x);
}

torch::Tensor LeNet5Impl::pool(const torch::Tensor& x) const {
  return options_.pooling == Pooling::Max ? torch::max_pool2d(x, 2) : torch::avg_pool2d(x, 2);
}

torch::Tensor LeNet5Impl::forward(const torch::Tensor& x) {
  // Without autograd on the CPU, the fused kernels compute the same logits faster.
  if (!torch::GradMode::is_enabled() && x.device().is_cpu() && x.scalar_type() == torch::kFloat32 &&
      conv1->weight.device().is_cpu() && fused::enabled()) {
    return fused::logits(*this, x);
  }
  auto h = pool(activate(conv1->forward(x)));
  h = pool(activate(conv2->forward(h)));
  h = h.flatten(1);
  h = activate(fc1->forward(h));
  h = activate(fc2->forward(h));
  return fc3->forward(h);
}

void LeNet5Impl::reset_parameters(at::Generator generator) {
  torch::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    auto weight = module->named_parameters(/*recurse=*/false)["weight"];
    auto bias = module->named_parameters(/*recurse=*/false)["bias"];
    const double fan_in = static_cast<double>(weight[0].numel());
    const double bound = 1.0 / std::sqrt(fan_in);
    weight.uniform_(-bound, bound, generator);
    bias.uniform_(-bound, bound, generator);
  }
}

}  // namespace lenet
