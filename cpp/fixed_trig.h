// sin(pi x) and cos(pi x) in double from +, -, * only (no libm: glibc picks its variants of
// sin and cos by CPU at load time), so learning-rate schedules and distortions are the same
// bits on every CPU. Accurate to a few ulp; exact at x = 0 (cos 1, sin 0).
#pragma once

namespace lenet::fixed_trig {

inline constexpr double kPi = 3.14159265358979323846;

namespace detail {

// sin(t) and cos(t) for |t| <= pi/4 by their Taylor series to t^21 / t^20 (truncation < 1e-19).
inline double sin_small(double t) {
  const double t2 = t * t;
  double p = -1.0 / 51090942171709440000.0;      // -1/21!
  p = p * t2 + 1.0 / 121645100408832000.0;       // 1/19!
  p = p * t2 - 1.0 / 355687428096000.0;          // -1/17!
  p = p * t2 + 1.0 / 1307674368000.0;            // 1/15!
  p = p * t2 - 1.0 / 6227020800.0;               // -1/13!
  p = p * t2 + 1.0 / 39916800.0;                 // 1/11!
  p = p * t2 - 1.0 / 362880.0;                   // -1/9!
  p = p * t2 + 1.0 / 5040.0;                     // 1/7!
  p = p * t2 - 1.0 / 120.0;                      // -1/5!
  p = p * t2 + 1.0 / 6.0;                        // 1/3!
  return t - t * (t2 * p);
}

inline double cos_small(double t) {
  const double t2 = t * t;
  double p = 1.0 / 2432902008176640000.0;        // 1/20!
  p = p * t2 - 1.0 / 6402373705728000.0;         // -1/18!
  p = p * t2 + 1.0 / 20922789888000.0;           // 1/16!
  p = p * t2 - 1.0 / 87178291200.0;              // -1/14!
  p = p * t2 + 1.0 / 479001600.0;                // 1/12!
  p = p * t2 - 1.0 / 3628800.0;                  // -1/10!
  p = p * t2 + 1.0 / 40320.0;                    // 1/8!
  p = p * t2 - 1.0 / 720.0;                      // -1/6!
  p = p * t2 + 1.0 / 24.0;                       // 1/4!
  p = p * t2 - 0.5;                              // -1/2!
  return 1.0 + t2 * p;
}

}  // namespace detail

// cos(pi x) for |x| < 2^52: reduced exactly to x in [0, 1] (cos is even, 2-periodic), then to
// [0, 1/2] by cos(pi x) = -cos(pi (1 - x)), then to an argument of at most pi/4.
inline double cos_pi(double x) {
  if (x < 0.0) x = -x;
  x = x - 2.0 * static_cast<double>(static_cast<long long>(x * 0.5));  // x in [0, 2)
  if (x > 1.0) x = 2.0 - x;
  double sign = 1.0;
  if (x > 0.5) {
    x = 1.0 - x;
    sign = -1.0;
  }
  const double value = x > 0.25 ? detail::sin_small(kPi * (0.5 - x)) : detail::cos_small(kPi * x);
  return sign * value;
}

// sin(pi x) = cos(pi (x - 1/2)), computed directly near 0 so that small angles stay accurate.
inline double sin_pi(double x) {
  if (x >= -0.25 && x <= 0.25) return detail::sin_small(kPi * x);
  return cos_pi(x - 0.5);
}

}  // namespace lenet::fixed_trig
