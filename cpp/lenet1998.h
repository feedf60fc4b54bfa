// The LeNet-5 of LeCun, Bottou, Bengio and Haffner (1998), "Gradient-based learning applied to
// document recognition", as libtorch layers (architecture "lenet5-1998"; README "The 1998
// network" lists the choices the paper leaves open). LeNet5Impl (lenet.h) owns them and registers
// them under the paper's layer names: c1.weight, s2.coefficient, ..., f6.bias[, output.*].
//
// Input [N,1,28,28] zero-padded by 2 (the 32x32 input of the paper; zero is the mean intensity
// of the normalised images, as for today's conv1) -> C1 conv 5x5 6@28x28 -> S2 -> C3 conv 5x5
// 16@10x10 (partial connection table) -> S4 -> C5 conv 5x5 120@1x1 -> F6 84 -> output.
// Every unit up to F6 applies the squashing function f(a) = 1.7159 tanh(2a/3).
#pragma once

#include "lenet.h"

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lenet {

inline constexpr double kSquashAmplitude = 1.7159;    // A of f(a) = A tanh(S a)
inline constexpr double kSquashSlope = 2.0 / 3.0;     // S
// The positive constant j of the paper's RBF loss, E = y_D + log(exp(-j) + sum_i exp(-y_i)).
inline constexpr double kRbfJ = 1.0;
// Seed of the generator that draws the RBF codes (rbf_codes()).
inline constexpr uint64_t kRbfCodeSeed = 1998;

// C3 map m reads S2 map s when kC3Table[m][s] (the paper's Table I).
inline constexpr int kS2Maps = 6;
inline constexpr int kC3Maps = 16;
inline constexpr std::array<std::array<bool, kS2Maps>, kC3Maps> kC3Table = {{
    {1, 1, 1, 0, 0, 0}, {0, 1, 1, 1, 0, 0}, {0, 0, 1, 1, 1, 0}, {0, 0, 0, 1, 1, 1},
    {1, 0, 0, 0, 1, 1}, {1, 1, 0, 0, 0, 1}, {1, 1, 1, 1, 0, 0}, {0, 1, 1, 1, 1, 0},
    {0, 0, 1, 1, 1, 1}, {1, 0, 0, 1, 1, 1}, {1, 1, 0, 0, 1, 1}, {1, 1, 1, 0, 0, 1},
    {1, 1, 0, 1, 1, 0}, {0, 1, 1, 0, 1, 1}, {1, 0, 1, 1, 0, 1}, {1, 1, 1, 1, 1, 1},
}};

// f(a) = 1.7159 tanh(2a/3).
torch::Tensor squash(const torch::Tensor& a);

// The C3 mask [16,6,5,5] (float 0/1) from kC3Table.
torch::Tensor c3_mask();

// The 10 RBF codes [10,84] in {-1,+1}: code[i][j] = +1 where bit 0 of the (84 i + j)-th 32-bit
// draw of a CPU generator (mt19937) seeded with kRbfCodeSeed is 1, else -1. The paper draws its
// codes as 7x12 bitmaps of the digits and prints no table; random codes are the documented
// deviation (pairwise Hamming distances around 42 of 84).
torch::Tensor rbf_codes();

// A trainable subsampling layer: per map, the sum of each 2x2 window times a trainable
// coefficient plus a trainable bias (registered as "coefficient" and "bias"), then f.
class SubsamplingImpl : public torch::nn::Module {
 public:
  explicit SubsamplingImpl(int64_t maps);
  torch::Tensor forward(const torch::Tensor& x) const;
  torch::Tensor coefficient;
  torch::Tensor bias;
};
TORCH_MODULE(Subsampling);

// The layers of the 1998 network, registered in `owner`. c3's non-connected weights are zero
// from the initialisation on and the forward pass multiplies the weights by the mask, so their
// gradient is exactly zero and SGD (with momentum and weight decay) never moves them.
class Lenet1998Layers {
 public:
  Lenet1998Layers(torch::nn::Module& owner, Output output);

  // Scores [N,10]: logits (softmax) or minus the RBF distances y_i (rbf), so arg-max predicts.
  torch::Tensor forward(const torch::Tensor& x) const;
  // The mean (or summed) loss of scores: cross-entropy (softmax), or the paper's
  // E = y_D + log(exp(-j) + sum_i exp(-y_i)), which is the cross-entropy of the scores with an
  // eleventh constant score -j (rbf).
  torch::Tensor loss(const torch::Tensor& scores, const torch::Tensor& labels, bool sum) const;
  // Uniform in +-2.4/F (F: the fan-in of the unit; for C3, of each map's connected inputs),
  // weights then biases, layer by layer, from `generator` (fill_uniform); C3's mask applied.
  void reset_parameters(at::Generator& generator);
  // Trainable parameters per layer, in layer order (C3 without its non-connected weights).
  std::vector<std::pair<std::string, int64_t>> parameter_counts() const;

  Output output_kind;
  Layer c1{nullptr};
  Subsampling s2{nullptr};
  Layer c3{nullptr};
  Subsampling s4{nullptr};
  Layer c5{nullptr};
  Layer f6{nullptr};
  Layer output{nullptr};  // softmax only
  torch::Tensor mask;     // buffer "c3_mask" [16,6,5,5]
  torch::Tensor codes;    // buffer "rbf_codes" [10,84], rbf only
};

// Throws c10::ValueError when `options` combine badly (output='rbf' with architecture='lenet5').
void check_model_options(const LeNet5Options& options);

}  // namespace lenet
