// Which network a run trains, as plain values (no torch include, like options.h).
#pragma once

#include <string>

namespace lenet {

// "lenet5": today's simplified LeNet-5 (lenet.h: plain activation, parameter-free pooling, full
// C3, linear output). "lenet5-1998": the network of LeCun, Bottou, Bengio and Haffner (1998),
// lenet1998.h: trainable subsampling, the partial C3 connection table, scaled tanh.
enum class Architecture { LeNet5, LeNet5_1998 };
// The output layer and loss of "lenet5-1998": "softmax" (a linear layer 84 -> 10 and softmax
// cross-entropy) or "rbf" (the paper's Euclidean RBF units with fixed +-1 codes and its loss).
// Today's network has only "softmax".
enum class Output { Softmax, Rbf };

// parse_* throw std::invalid_argument naming the argument, the value and the accepted values.
Architecture parse_architecture(const std::string& name);
Output parse_output(const std::string& name);
std::string to_string(Architecture architecture);
std::string to_string(Output output);

}  // namespace lenet
