#include "options.h"

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

Kernels parse_kernels(const std::string& name) {
  if (name == "fused") return Kernels::Fused;
  if (name == "libtorch") return Kernels::Libtorch;
  throw std::invalid_argument("kernels must be 'fused' or 'libtorch', got '" + name + "'");
}

std::string to_string(Activation activation) {
  return activation == Activation::ReLU ? "relu" : "tanh";
}

std::string to_string(Pooling pooling) { return pooling == Pooling::Max ? "max" : "avg"; }

std::string to_string(Kernels kernels) {
  return kernels == Kernels::Fused ? "fused" : "libtorch";
}

}  // namespace lenet
