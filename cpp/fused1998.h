// The fused CPU path of architecture "lenet5-1998" (lenet1998.h): the same shard layout,
// workspace and matrix kernels as today's network (fused.h, kernels.h), with the 1998 layers in
// between: the squashing function f(a) = 1.7159 tanh(2a/3) (fixed_math's tanh, no libm),
// trainable subsampling, C3's connection table (its non-connected weights get no gradient) and
// the RBF output. Every sum runs in an order fixed here, so results are the same bits on every
// CPU and for every thread count. fused.cpp dispatches here when the model is lenet5-1998.
#pragma once

#include "fused.h"

#include <cstdint>

namespace lenet::fused1998 {

using fused::ParamBlock;
using fused::next_block;

// The flat layout: C1 [6][25+1]; S2 [6][coefficient, bias]; C3 [16][150+1] (PyTorch's order
// of the [16,6,5,5] weights, non-connected ones zero); S4 [16][2]; C5 [120][400+1]; F6
// [84][120+1]; then, for the softmax output only, [10][84+1].
inline constexpr ParamBlock kC1{6, 25, 0};
inline constexpr ParamBlock kS2 = next_block(kC1, 6, 1);
inline constexpr ParamBlock kC3 = next_block(kS2, 16, 150);
inline constexpr ParamBlock kS4 = next_block(kC3, 16, 1);
inline constexpr ParamBlock kC5 = next_block(kS4, 120, 400);
inline constexpr ParamBlock kF6 = next_block(kC5, 84, 120);
inline constexpr ParamBlock kOutput = next_block(kF6, 10, 84);
constexpr int64_t parameter_count(Output output) {
  return output == Output::Softmax ? kOutput.end() : kF6.end();
}

// Module parameters <-> flat layout (float32, CPU); pack applies C3's mask.
torch::Tensor pack(const LeNet5Impl& model);
void unpack(const torch::Tensor& params, LeNet5Impl& model);

// As fused::forward / fused::forward_backward; ws.logits receives the scores (logits, or minus
// the RBF distances).
void forward(const float* params, Output output, const float* images, int64_t count,
             fused::Workspace& ws);
kernels::LossTotals forward_backward(const float* params, Output output, const float* images,
                                     const int64_t* labels, int64_t count, int64_t batch,
                                     fused::Workspace& ws, float* grad);

// The loss of scores [10][kLanes] (lanes 0..count-1) and dscores = scale * its gradient:
// softmax cross-entropy, or the paper's RBF loss (the cross-entropy with an eleventh score -j).
kernels::LossTotals loss(Output output, const float* scores, const int64_t* labels, int64_t count,
                         float scale, float* dscores);

}  // namespace lenet::fused1998
