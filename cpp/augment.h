// Random planar affine distortions of the training images (LeCun et al. 1998, Simard et al.
// 2003): translation, scaling, squeezing, horizontal shearing and a small rotation, drawn per
// image per pass from the run's own generator and applied by bilinear resampling. Labels are
// unchanged. Only +, -, *, / and exact operations (fixed_trig.h for the rotation), so a run is
// the same bits on every CPU.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace lenet {

// The largest distortion of each kind; every draw is uniform in [-range, +range].
struct AugmentOptions {
  bool enabled = false;
  double translate = 2.0;  // pixels, along x and along y independently
  double scale = 0.1;      // both axes by 1 + s
  double squeeze = 0.1;    // x by 1 + q and y by 1 / (1 + q)
  double shear = 0.2;      // x += h * y
  double rotate = 10.0;    // degrees
};

// The names of the ranges, in AugmentOptions' order (the keys of Python's augment={...}).
const std::vector<std::string>& augment_range_names();
// The range called `name` (one of augment_range_names()).
double& augment_range(AugmentOptions& options, const std::string& name);

// Throws c10::ValueError naming the first range out of its bounds.
void validate(const AugmentOptions& options);

// Text of the options that change results, for checkpoint fingerprints.
std::string describe(const AugmentOptions& options);

// One image's distortion, as the map from output to input pixel coordinates about the image
// centre c: input = c + m * (output - c) + t.
struct Affine {
  float m[2][2];
  float t[2];
};

// Draws one Affine per image: 6 draws of the generator per image, in image order.
std::vector<Affine> draw_distortions(const AugmentOptions& options, int64_t count,
                                     at::Generator& generator);

// Resamples images (CPU float32 [N,C,H,W], contiguous) into out (same shape, contiguous) by
// their Affine maps: bilinear, with `background` outside the image. Shards of images run on
// at::get_num_threads() threads; each image is written by one thread, so the result does not
// depend on the thread count.
void resample(const torch::Tensor& images, const std::vector<Affine>& maps, float background,
              torch::Tensor& out);

// A distorted copy of images (CPU float32 [N,C,H,W]): one draw_distortions map per image, in
// order, then resample. `background` is the value of a blank pixel.
torch::Tensor distort(const torch::Tensor& images, const AugmentOptions& options,
                      at::Generator& generator, float background);

}  // namespace lenet
