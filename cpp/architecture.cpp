#include "architecture.h"

#include <stdexcept>

namespace lenet {

Architecture parse_architecture(const std::string& name) {
  if (name == "lenet5") return Architecture::LeNet5;
  if (name == "lenet5-1998") return Architecture::LeNet5_1998;
  throw std::invalid_argument("architecture must be 'lenet5' or 'lenet5-1998', got '" + name + "'");
}

Output parse_output(const std::string& name) {
  if (name == "softmax") return Output::Softmax;
  if (name == "rbf") return Output::Rbf;
  throw std::invalid_argument("output must be 'softmax' or 'rbf', got '" + name + "'");
}

std::string to_string(Architecture architecture) {
  return architecture == Architecture::LeNet5 ? "lenet5" : "lenet5-1998";
}

std::string to_string(Output output) { return output == Output::Softmax ? "softmax" : "rbf"; }

}  // namespace lenet
