// The choices a LeNet-5 run is made of, as plain values: no torch include, so the kernels and
// the model share them without depending on each other.
#pragma once

#include "architecture.h"

#include <string>

namespace lenet {

enum class Activation { ReLU, Tanh };
enum class Pooling { Max, Avg };
// Which implementation computes a CPU run: the fused kernels (fused.h; the default on the CPU,
// bit-identical on every CPU) or libtorch's autograd ops (the reference, and the CUDA path).
enum class Kernels { Fused, Libtorch };

// Parse/print the option names used across the Python API ("relu"/"tanh", "max"/"avg",
// "fused"/"libtorch"). parse_* throw std::invalid_argument naming the accepted values.
Activation parse_activation(const std::string& name);
Pooling parse_pooling(const std::string& name);
Kernels parse_kernels(const std::string& name);
std::string to_string(Activation activation);
std::string to_string(Pooling pooling);
std::string to_string(Kernels kernels);

struct LeNet5Options {
  Activation activation = Activation::ReLU;
  Pooling pooling = Pooling::Max;
  // lenet5-1998 has its own squashing and subsampling: activation and pooling do not apply.
  Architecture architecture = Architecture::LeNet5;
  Output output = Output::Softmax;  // "rbf" needs lenet5-1998
};

// torch::optim::SGD's options (dampening 0, no Nesterov), used by both paths.
struct SgdOptions {
  double learning_rate = 0.01;
  double momentum = 0.0;
  double weight_decay = 0.0;
};

}  // namespace lenet
