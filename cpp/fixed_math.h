// exp, expm1, log and tanh for the fused kernels, built from +, -, *, / and exact bit
// operations only. glibc picks its own variants of these functions by CPU at load time (FMA,
// AVX2), so calling libm would let the CPU change results; these give the same bits on every
// CPU and in every build (compiled with -ffp-contract=off: no fused multiply-adds).
// Accuracy: a few ulp over the ranges the kernels use.
#pragma once

#include <cstdint>
#include <cstring>

namespace lenet::fixed_math {

inline float from_bits(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

inline uint32_t to_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

// y = n*ln2 + r with |r| <= ln2/2 (Cody-Waite: ln2 split so that n*kLn2High is exact), and 2^n.
struct Reduced {
  float r;
  float scale;
};

inline Reduced reduce(float y) {
  constexpr float kLog2e = 1.44269504088896341F;
  constexpr float kLn2High = 0.693145751953125F;  // 16 significant bits
  constexpr float kLn2Low = 1.42860676533018704e-06F;
  y = y < -87.0F ? -87.0F : (y > 88.0F ? 88.0F : y);  // keeps 2^n a normal float; NaN passes
  const float t = y * kLog2e;
  const auto n = static_cast<int32_t>(t < 0.0F ? t - 0.5F : t + 0.5F);  // round half away
  const float nf = static_cast<float>(n);
  const float r = (y - nf * kLn2High) - nf * kLn2Low;
  return {r, from_bits(static_cast<uint32_t>(n + 127) << 23)};
}

// expm1(r) for |r| <= ln2/2: Taylor series to r^8 (truncation below 2^-27 relative).
inline float expm1_reduced(float r) {
  float p = 1.0F / 40320.0F;
  p = p * r + 1.0F / 5040.0F;
  p = p * r + 1.0F / 720.0F;
  p = p * r + 1.0F / 120.0F;
  p = p * r + 1.0F / 24.0F;
  p = p * r + 1.0F / 6.0F;
  p = p * r + 0.5F;
  return r + (r * r) * p;
}

inline float exp(float y) {
  const Reduced v = reduce(y);
  return v.scale + v.scale * expm1_reduced(v.r);
}

// exp(y) - 1 without the cancellation of exp(y) - 1 near 0.
inline float expm1(float y) {
  const Reduced v = reduce(y);
  return v.scale * expm1_reduced(v.r) + (v.scale - 1.0F);
}

// tanh(x) = -expm1(-2|x|) / (2 + expm1(-2|x|)), with the sign of x.
inline float tanh(float x) {
  const float a = x < 0.0F ? -x : x;
  const float e = expm1(-2.0F * a);
  const float t = -e / (2.0F + e);
  return x < 0.0F ? -t : t;
}

// Natural log of a positive normal float (NaN and +inf come back as they are): x = m * 2^k with m in [sqrt(1/2), sqrt(2)),
// log(m) = 2 atanh(s), s = (m-1)/(m+1), |s| < 0.172, by its series to s^11.
inline float log(float x) {
  constexpr float kLn2High = 0.693145751953125F;
  constexpr float kLn2Low = 1.42860676533018704e-06F;
  if (!(x < 3.4e38F)) return x;  // NaN and infinity pass through
  uint32_t bits = to_bits(x);
  int32_t k = static_cast<int32_t>(bits >> 23) - 127;
  bits = (bits & 0x007fffffU) | 0x3f800000U;  // m in [1, 2)
  float m = from_bits(bits);
  if (m > 1.41421356F) {
    m = m * 0.5F;
    k = k + 1;
  }
  const float s = (m - 1.0F) / (m + 1.0F);
  const float s2 = s * s;
  float p = 1.0F / 11.0F;
  p = p * s2 + 1.0F / 9.0F;
  p = p * s2 + 1.0F / 7.0F;
  p = p * s2 + 1.0F / 5.0F;
  p = p * s2 + 1.0F / 3.0F;
  const float log_m = 2.0F * s + (2.0F * s) * (s2 * p);
  const float kf = static_cast<float>(k);
  return (kf * kLn2High + log_m) + kf * kLn2Low;
}

}  // namespace lenet::fixed_math
