#include "augment.h"

#include "fixed_trig.h"
#include "shard_pool.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <sstream>

namespace lenet {
namespace {

// Upper bounds of the ranges: beyond them a digit leaves the 28x28 frame or flips.
constexpr double kMaxTranslate = 8.0;
constexpr double kMaxScale = 0.5;
constexpr double kMaxSqueeze = 0.5;
constexpr double kMaxShear = 1.0;
constexpr double kMaxRotate = 45.0;

// A uniform draw in [-1, 1) from 24 random bits (exact in float and double).
double symmetric_uniform(at::CPUGeneratorImpl& generator) {
  constexpr double kScale = 1.0 / 8388608.0;  // 2^-23
  return static_cast<double>(generator.random() >> 8) * kScale - 1.0;
}

void check_range(const char* name, double value, double maximum, const char* unit) {
  TORCH_CHECK_VALUE(std::isfinite(value) && value >= 0.0 && value <= maximum, "augment range '",
                    name, "' must be a number in [0, ", maximum, "]", unit, ", got ", value);
}

// Images per shard of the thread pool that resamples a pass.
constexpr int64_t kShardImages = 256;

// Blank pixels around an image in its padded copy: every tap of a sample point clamped into
// [-kPad, size - 1 + kPad - 1] lands inside the copy, so sampling needs no bounds checks.
constexpr int64_t kPad = 2;

// One image: every output pixel (column, row) samples the input bilinearly at
// c + m * ((column, row) - c) + t, computed as (row part + t) + column part; points more than
// a pixel outside the image are clamped into the blank border. `padded` holds
// (height + 2 kPad) x (width + 2 kPad) floats of scratch.
void resample_image(const float* in, const Affine& map, int64_t planes, int64_t height,
                    int64_t width, float background, float* padded, float* out) {
  const int64_t stride = width + 2 * kPad;
  const float cx = static_cast<float>(width - 1) * 0.5F;
  const float cy = static_cast<float>(height - 1) * 0.5F;
  const float low = static_cast<float>(-kPad);
  const float high_x = static_cast<float>(width + kPad - 2);
  const float high_y = static_cast<float>(height + kPad - 2);
  for (int64_t plane = 0; plane < planes; ++plane) {
    std::fill(padded, padded + (height + 2 * kPad) * stride, background);
    for (int64_t row = 0; row < height; ++row) {
      std::copy(in + (plane * height + row) * width, in + (plane * height + row + 1) * width,
                padded + (row + kPad) * stride + kPad);
    }
    const float* origin = padded + kPad * stride + kPad;  // pixel (0, 0)
    float* result = out + plane * height * width;
    for (int64_t row = 0; row < height; ++row) {
      const float dy = static_cast<float>(row) - cy;
      const float row_x = (cx + map.m[0][1] * dy) + map.t[0];
      const float row_y = (cy + map.m[1][1] * dy) + map.t[1];
      for (int64_t column = 0; column < width; ++column) {
        const float dx = static_cast<float>(column) - cx;
        float x = row_x + map.m[0][0] * dx;
        float y = row_y + map.m[1][0] * dx;
        x = x < low ? low : (x > high_x ? high_x : x);
        y = y < low ? low : (y > high_y ? high_y : y);
        auto x0 = static_cast<int64_t>(static_cast<int32_t>(x));  // floor: truncate, then
        auto y0 = static_cast<int64_t>(static_cast<int32_t>(y));  // step down below zero
        x0 -= static_cast<float>(x0) > x ? 1 : 0;
        y0 -= static_cast<float>(y0) > y ? 1 : 0;
        const float ax = x - static_cast<float>(x0);
        const float ay = y - static_cast<float>(y0);
        const float* tap = origin + y0 * stride + x0;
        const float top = tap[0] * (1.0F - ax) + tap[1] * ax;
        const float bottom = tap[stride] * (1.0F - ax) + tap[stride + 1] * ax;
        result[row * width + column] = top * (1.0F - ay) + bottom * ay;
      }
    }
  }
}

}  // namespace

const std::vector<std::string>& augment_range_names() {
  static const std::vector<std::string> names{"translate", "scale", "squeeze", "shear", "rotate"};
  return names;
}

double& augment_range(AugmentOptions& options, const std::string& name) {
  if (name == "translate") return options.translate;
  if (name == "scale") return options.scale;
  if (name == "squeeze") return options.squeeze;
  if (name == "shear") return options.shear;
  TORCH_CHECK_VALUE(name == "rotate", "augment has no range '", name,
                    "'; expected translate, scale, squeeze, shear or rotate");
  return options.rotate;
}

void validate(const AugmentOptions& options) {
  check_range("translate", options.translate, kMaxTranslate, " pixels");
  check_range("scale", options.scale, kMaxScale, "");
  check_range("squeeze", options.squeeze, kMaxSqueeze, "");
  check_range("shear", options.shear, kMaxShear, "");
  check_range("rotate", options.rotate, kMaxRotate, " degrees");
}

std::string describe(const AugmentOptions& options) {
  if (!options.enabled) return "augment=off";
  std::ostringstream out;
  out.precision(17);
  out << "augment=translate:" << options.translate << ",scale:" << options.scale
      << ",squeeze:" << options.squeeze << ",shear:" << options.shear
      << ",rotate:" << options.rotate;
  return out.str();
}

std::vector<Affine> draw_distortions(const AugmentOptions& options, int64_t count,
                                     at::Generator& generator) {
  std::vector<Affine> maps(static_cast<size_t>(count));
  std::lock_guard<std::mutex> lock(generator.mutex());
  auto* source = generator.get<at::CPUGeneratorImpl>();
  for (auto& map : maps) {
    const double tx = symmetric_uniform(*source) * options.translate;
    const double ty = symmetric_uniform(*source) * options.translate;
    const double scale = 1.0 + symmetric_uniform(*source) * options.scale;
    const double squeeze = 1.0 + symmetric_uniform(*source) * options.squeeze;
    const double shear = symmetric_uniform(*source) * options.shear;
    const double turns = symmetric_uniform(*source) * options.rotate / 180.0;
    const double c = fixed_trig::cos_pi(turns);
    const double s = fixed_trig::sin_pi(turns);
    const double sx = scale * squeeze;
    const double sy = scale / squeeze;
    // m = rotation * [[1, shear], [0, 1]] * diag(sx, sy)
    map.m[0][0] = static_cast<float>(c * sx);
    map.m[0][1] = static_cast<float>((c * shear - s) * sy);
    map.m[1][0] = static_cast<float>(s * sx);
    map.m[1][1] = static_cast<float>((s * shear + c) * sy);
    map.t[0] = static_cast<float>(tx);
    map.t[1] = static_cast<float>(ty);
  }
  return maps;
}

void resample(const torch::Tensor& images, const std::vector<Affine>& maps, float background,
              torch::Tensor& out) {
  TORCH_CHECK_VALUE(images.dim() == 4 && images.scalar_type() == torch::kFloat32 &&
                        images.device().is_cpu() && images.is_contiguous(),
                    "resample takes contiguous CPU float32 images [N,C,H,W], got ",
                    images.sizes());
  TORCH_CHECK_VALUE(static_cast<int64_t>(maps.size()) == images.size(0),
                    "resample needs one map per image: ", images.size(0), " images, ",
                    maps.size(), " maps");
  TORCH_CHECK_VALUE(out.sizes() == images.sizes() && out.scalar_type() == torch::kFloat32 &&
                        out.device().is_cpu() && out.is_contiguous(),
                    "resample writes into contiguous CPU float32 ", images.sizes(), ", got ",
                    out.sizes());
  const int64_t planes = images.size(1);
  const int64_t height = images.size(2);
  const int64_t width = images.size(3);
  const int64_t image_size = planes * height * width;
  const float* in = images.data_ptr<float>();
  float* result = out.data_ptr<float>();
  // each image is written by one thread, so the result does not depend on the threads
  const int64_t n = images.size(0);
  const int64_t shards = (n + kShardImages - 1) / kShardImages;
  fused::ShardPool pool(std::min<int64_t>(at::get_num_threads(), shards));
  std::vector<std::vector<float>> scratch(static_cast<size_t>(std::max<int64_t>(pool.workers(), 1)),
                                          std::vector<float>(static_cast<size_t>(
                                              (height + 2 * kPad) * (width + 2 * kPad))));
  pool.run(shards, [&](int64_t shard, int64_t worker) {
    float* padded = scratch[static_cast<size_t>(worker)].data();
    const int64_t end = std::min(n, (shard + 1) * kShardImages);
    for (int64_t i = shard * kShardImages; i < end; ++i) {
      resample_image(in + i * image_size, maps[static_cast<size_t>(i)], planes, height, width,
                     background, padded, result + i * image_size);
    }
  });
}

torch::Tensor distort(const torch::Tensor& images, const AugmentOptions& options,
                      at::Generator& generator, float background) {
  const auto source = images.contiguous();
  const auto maps = draw_distortions(options, source.size(0), generator);
  auto out = torch::empty_like(source);
  resample(source, maps, background, out);
  return out;
}

}  // namespace lenet
