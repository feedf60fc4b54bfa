#include "lenet.h"

#include "lenet1998.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <mutex>

namespace lenet {

LayerImpl::LayerImpl(std::vector<int64_t> weight_shape) {
  const auto outputs = weight_shape.front();
  weight = register_parameter("weight", torch::empty(weight_shape));
  bias = register_parameter("bias", torch::empty({outputs}));
}

LeNet5Impl::LeNet5Impl(LeNet5Options options, at::Generator generator) : options_(options) {
  check_model_options(options);
  if (options.architecture == Architecture::LeNet5_1998) {
    lenet1998_ = std::make_shared<Lenet1998Layers>(*this, options.output);
    reset_parameters(std::move(generator));
    return;
  }
  conv1 = register_module("conv1", Layer(std::vector<int64_t>{6, 1, 5, 5}));
  conv2 = register_module("conv2", Layer(std::vector<int64_t>{16, 6, 5, 5}));
  fc1 = register_module("fc1", Layer(std::vector<int64_t>{120, 16 * 5 * 5}));
  fc2 = register_module("fc2", Layer(std::vector<int64_t>{84, 120}));
  fc3 = register_module("fc3", Layer(std::vector<int64_t>{10, 84}));
  reset_parameters(std::move(generator));
}

torch::Tensor LeNet5Impl::activate(const torch::Tensor& x) const {
  return options_.activation == Activation::ReLU ? torch::relu(x) : torch::tanh(x);
}

torch::Tensor LeNet5Impl::pool(const torch::Tensor& x) const {
  return options_.pooling == Pooling::Max ? torch::max_pool2d(x, 2) : torch::avg_pool2d(x, 2);
}

torch::Tensor LeNet5Impl::forward(const torch::Tensor& x) {
  if (lenet1998_) return lenet1998_->forward(x);
  auto h = pool(activate(torch::conv2d(x, conv1->weight, conv1->bias, 1, 2)));
  h = pool(activate(torch::conv2d(h, conv2->weight, conv2->bias)));
  h = h.flatten(1);
  h = activate(torch::linear(h, fc1->weight, fc1->bias));
  h = activate(torch::linear(h, fc2->weight, fc2->bias));
  return torch::linear(h, fc3->weight, fc3->bias);
}

torch::Tensor LeNet5Impl::loss(const torch::Tensor& scores, const torch::Tensor& labels,
                               bool sum) const {
  if (lenet1998_) return lenet1998_->loss(scores, labels, sum);
  namespace F = torch::nn::functional;
  if (sum) return F::cross_entropy(scores, labels, F::CrossEntropyFuncOptions().reduction(torch::kSum));
  return F::cross_entropy(scores, labels);
}

torch::Device LeNet5Impl::device() const { return parameters().front().device(); }

std::vector<std::pair<std::string, int64_t>> LeNet5Impl::parameter_counts() const {
  if (lenet1998_) return lenet1998_->parameter_counts();
  std::vector<std::pair<std::string, int64_t>> counts;
  for (const auto& child : named_children()) {
    int64_t count = 0;
    for (const auto& parameter : child.value()->parameters()) count += parameter.numel();
    counts.emplace_back(child.key(), count);
  }
  return counts;
}

// Draws from the low 24 bits of the generator's 32-bit output, in element order, with our own
// arithmetic: ATen's uniform_ kernel differs by CPU capability (ATEN_CPU_CAPABILITY), which
// would change the initial weights from one CPU to another.
void fill_uniform(torch::Tensor& tensor, double bound, at::Generator& generator) {
  auto values = torch::empty(tensor.sizes(), torch::kFloat32);
  float* out = values.data_ptr<float>();
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    auto* source = at::check_generator<at::CPUGeneratorImpl>(generator);
    for (int64_t i = 0; i < values.numel(); ++i) {
      const double unit = static_cast<double>(source->random() & 0xFFFFFFU) * 0x1p-24;  // [0, 1)
      out[i] = static_cast<float>(-bound + 2.0 * bound * unit);
    }
  }
  tensor.copy_(values);
}

void LeNet5Impl::reset_parameters(at::Generator generator) {
  torch::NoGradGuard no_grad;
  if (lenet1998_) {
    lenet1998_->reset_parameters(generator);
    return;
  }
  for (auto* layer : {&conv1, &conv2, &fc1, &fc2, &fc3}) {
    auto& weight = (*layer)->weight;
    const double bound = 1.0 / std::sqrt(static_cast<double>(weight[0].numel()));  // 1/sqrt(fan_in)
    fill_uniform(weight, bound, generator);
    fill_uniform((*layer)->bias, bound, generator);
  }
}

}  // namespace lenet
