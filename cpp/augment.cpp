#include "augment.h"

#include "fixed_trig.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/Exception.h>

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

// Bilinear sample of one HxW plane at (x, y) (column, row), `background` outside.
float sample(const float* plane, int64_t height, int64_t width, float x, float y,
             float background) {
  const float fx = std::floor(x);
  const float fy = std::floor(y);
  const float ax = x - fx;
  const float ay = y - fy;
  const auto x0 = static_cast<int64_t>(fx);
  const auto y0 = static_cast<int64_t>(fy);
  const auto at = [&](int64_t row, int64_t column) {
    const bool inside = row >= 0 && row < height && column >= 0 && column < width;
    return inside ? plane[row * width + column] : background;
  };
  const float top = at(y0, x0) * (1.0F - ax) + at(y0, x0 + 1) * ax;
  const float bottom = at(y0 + 1, x0) * (1.0F - ax) + at(y0 + 1, x0 + 1) * ax;
  return top * (1.0F - ay) + bottom * ay;
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
  const float cx = static_cast<float>(width - 1) * 0.5F;
  const float cy = static_cast<float>(height - 1) * 0.5F;
  const float* in = images.data_ptr<float>();
  float* result = out.data_ptr<float>();
  for (int64_t i = 0; i < images.size(0); ++i) {
    const auto& map = maps[static_cast<size_t>(i)];
    for (int64_t plane = 0; plane < planes; ++plane) {
      const int64_t offset = (i * planes + plane) * height * width;
      for (int64_t row = 0; row < height; ++row) {
        const float dy = static_cast<float>(row) - cy;
        for (int64_t column = 0; column < width; ++column) {
          const float dx = static_cast<float>(column) - cx;
          const float x = cx + (map.m[0][0] * dx + map.m[0][1] * dy) + map.t[0];
          const float y = cy + (map.m[1][0] * dx + map.m[1][1] * dy) + map.t[1];
          result[offset + row * width + column] =
              sample(in + offset, height, width, x, y, background);
        }
      }
    }
  }
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
