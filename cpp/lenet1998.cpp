#include "lenet1998.h"

#include <ATen/CPUGeneratorImpl.h>

#include <mutex>

namespace lenet {

namespace {

int connected_maps(int c3_map) {
  int connected = 0;
  for (const bool reads : kC3Table[static_cast<size_t>(c3_map)]) connected += reads ? 1 : 0;
  return connected;
}

}  // namespace

torch::Tensor squash(const torch::Tensor& a) {
  return kSquashAmplitude * torch::tanh(a * kSquashSlope);
}

torch::Tensor c3_mask() {
  auto mask = torch::zeros({kC3Maps, kS2Maps, 5, 5}, torch::kFloat32);
  for (int m = 0; m < kC3Maps; ++m) {
    for (int s = 0; s < kS2Maps; ++s) {
      if (kC3Table[static_cast<size_t>(m)][static_cast<size_t>(s)]) mask[m][s].fill_(1.0);
    }
  }
  return mask;
}

torch::Tensor rbf_codes() {
  auto codes = torch::empty({10, 84}, torch::kFloat32);
  float* out = codes.data_ptr<float>();
  auto generator = at::make_generator<at::CPUGeneratorImpl>(kRbfCodeSeed);
  std::lock_guard<std::mutex> lock(generator.mutex());
  auto* source = at::check_generator<at::CPUGeneratorImpl>(generator);
  for (int64_t i = 0; i < codes.numel(); ++i) out[i] = (source->random() & 1U) != 0 ? 1.0F : -1.0F;
  return codes;
}

SubsamplingImpl::SubsamplingImpl(int64_t maps) {
  coefficient = register_parameter("coefficient", torch::empty({maps}));
  bias = register_parameter("bias", torch::empty({maps}));
}

torch::Tensor SubsamplingImpl::forward(const torch::Tensor& x) const {
  const auto sums = torch::avg_pool2d(x, 2) * 4.0;  // exact: a power-of-two scaling
  return squash(sums * coefficient.view({1, -1, 1, 1}) + bias.view({1, -1, 1, 1}));
}

Lenet1998Layers::Lenet1998Layers(torch::nn::Module& owner, Output output_kind)
    : output_kind(output_kind) {
  c1 = owner.register_module("c1", Layer(std::vector<int64_t>{6, 1, 5, 5}));
  s2 = owner.register_module("s2", Subsampling(6));
  c3 = owner.register_module("c3", Layer(std::vector<int64_t>{kC3Maps, kS2Maps, 5, 5}));
  s4 = owner.register_module("s4", Subsampling(kC3Maps));
  c5 = owner.register_module("c5", Layer(std::vector<int64_t>{120, kC3Maps, 5, 5}));
  f6 = owner.register_module("f6", Layer(std::vector<int64_t>{84, 120}));
  mask = owner.register_buffer("c3_mask", c3_mask());
  if (output_kind == Output::Softmax) {
    output = owner.register_module("output", Layer(std::vector<int64_t>{10, 84}));
  } else {
    codes = owner.register_buffer("rbf_codes", rbf_codes());
  }
}

torch::Tensor Lenet1998Layers::forward(const torch::Tensor& x) const {
  auto h = squash(torch::conv2d(x, c1->weight, c1->bias, 1, 2));
  h = s2->forward(h);
  h = squash(torch::conv2d(h, c3->weight * mask, c3->bias));
  h = s4->forward(h);
  h = squash(torch::conv2d(h, c5->weight, c5->bias)).flatten(1);
  h = squash(torch::linear(h, f6->weight, f6->bias));
  if (output_kind == Output::Softmax) return torch::linear(h, output->weight, output->bias);
  // y_i = sum_j (h_j - code_ij)^2, as a difference: no cancellation from expanding the square
  const auto distances = (h.unsqueeze(1) - codes.unsqueeze(0)).square().sum(2);
  return -distances;
}

torch::Tensor Lenet1998Layers::loss(const torch::Tensor& scores, const torch::Tensor& labels,
                                    bool sum) const {
  namespace F = torch::nn::functional;
  auto all = scores;
  if (output_kind == Output::Rbf) {
    all = torch::cat({scores, torch::full({scores.size(0), 1}, -kRbfJ, scores.options())}, 1);
  }
  if (sum) return F::cross_entropy(all, labels, F::CrossEntropyFuncOptions().reduction(torch::kSum));
  return F::cross_entropy(all, labels);
}

void Lenet1998Layers::reset_parameters(at::Generator& generator) {
  torch::NoGradGuard no_grad;
  const auto fill = [&generator](torch::Tensor tensor, double fan_in) {
    fill_uniform(tensor, 2.4 / fan_in, generator);
  };
  fill(c1->weight, 25.0);
  fill(c1->bias, 25.0);
  for (const auto& layer : {s2, s4}) {
    fill(layer->coefficient, 4.0);
    fill(layer->bias, 4.0);
  }
  // C3: each map's fan-in is 25 times its connected S2 maps; the weights are drawn map by map
  // (then the non-connected ones set to zero), then the biases.
  for (int m = 0; m < kC3Maps; ++m) fill(c3->weight[m], 25.0 * connected_maps(m));
  for (int m = 0; m < kC3Maps; ++m) fill(c3->bias.narrow(0, m, 1), 25.0 * connected_maps(m));
  c3->weight.mul_(mask);
  fill(c5->weight, 400.0);
  fill(c5->bias, 400.0);
  fill(f6->weight, 120.0);
  fill(f6->bias, 120.0);
  if (output_kind == Output::Softmax) {
    fill(output->weight, 84.0);
    fill(output->bias, 84.0);
  }
}

std::vector<std::pair<std::string, int64_t>> Lenet1998Layers::parameter_counts() const {
  const auto connected = mask.sum().item<int64_t>();
  std::vector<std::pair<std::string, int64_t>> counts = {
      {"c1", c1->weight.numel() + c1->bias.numel()},
      {"s2", s2->coefficient.numel() + s2->bias.numel()},
      {"c3", connected + c3->bias.numel()},
      {"s4", s4->coefficient.numel() + s4->bias.numel()},
      {"c5", c5->weight.numel() + c5->bias.numel()},
      {"f6", f6->weight.numel() + f6->bias.numel()},
  };
  counts.emplace_back("output", output ? output->weight.numel() + output->bias.numel() : 0);
  return counts;
}

void check_model_options(const LeNet5Options& options) {
  TORCH_CHECK_VALUE(options.output == Output::Softmax ||
                        options.architecture == Architecture::LeNet5_1998,
                    "output='", to_string(options.output),
                    "' needs architecture='lenet5-1998', got architecture='",
                    to_string(options.architecture), "'");
}

}  // namespace lenet
