#include "kernels.h"

#include "fixed_math.h"

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// The hot loops are compiled for several instruction sets and one is picked at load time
// (GCC's target_clones on x86-64 glibc), unless the build pins one (setup.py, LENET_CPP_ISA).
// Which one runs changes the speed, never the result: the loops fix every sum's order, their
// FMAs are written out (fma_v) and the build forbids the compiler to add others.
#if defined(LENET_CPP_DISPATCH)
#define LENET_VECTORIZE __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define LENET_VECTORIZE
#endif
// The vector kernels' entry points inline everything they call, the FMA of their instruction
// set included (see fma_v).
#define LENET_KERNEL __attribute__((flatten))

namespace lenet::kernels {
namespace {

constexpr int64_t L = kLanes;
constexpr int64_t kImage = 28;

LENET_VECTORIZE void tanh_inplace(float* __restrict__ x, int64_t count) {
  for (int64_t j = 0; j < count; ++j) x[j] = fixed_math::tanh(x[j]);
}

template <bool kRelu>
inline float derivative(float y) {
  if constexpr (kRelu) {
    return y > 0.0F ? 1.0F : 0.0F;
  } else {
    return 1.0F - y * y;
  }
}

// Position of pixel (y, x) of a size x size map in blocked order (see kernels.h).
inline int64_t blocked(int64_t y, int64_t x, int64_t size) {
  const int64_t half = size / 2;
  return ((y % 2) * 2 + x % 2) * half * half + (y / 2) * half + x / 2;
}

inline void copy_lanes(const float* __restrict__ src, float* __restrict__ dst) {
  for (int64_t i = 0; i < L; ++i) dst[i] = src[i];
}

inline void add_lanes(const float* __restrict__ src, float* __restrict__ dst) {
  for (int64_t i = 0; i < L; ++i) dst[i] += src[i];
}

inline float sum_lanes(const float* v) {
  float sum = 0.0F;
  for (int64_t i = 0; i < L; ++i) sum += v[i];
  return sum;
}

template <bool kRelu>
LENET_VECTORIZE void max_pool_blocked(const float* __restrict__ in, int64_t n,
                                      float* __restrict__ out, int32_t* __restrict__ argmax) {
  const float* b1 = in + n;
  const float* b2 = in + 2 * n;
  const float* b3 = in + 3 * n;
  for (int64_t j = 0; j < n; ++j) {
    float best = in[j];
    int32_t at = 0;
    at = b1[j] > best ? 1 : at;
    best = b1[j] > best ? b1[j] : best;
    at = b2[j] > best ? 2 : at;
    best = b2[j] > best ? b2[j] : best;
    at = b3[j] > best ? 3 : at;
    best = b3[j] > best ? b3[j] : best;
    out[j] = kRelu ? std::max(best, 0.0F) : best;
    argmax[j] = at;
  }
}

LENET_VECTORIZE void avg_pool_blocked(const float* __restrict__ in, int64_t n,
                                      float* __restrict__ out) {
  for (int64_t j = 0; j < n; ++j) {
    out[j] = (in[j] + in[n + j] + in[2 * n + j] + in[3 * n + j]) / 4.0F;
  }
}

template <bool kRelu>
LENET_VECTORIZE void max_unpool_blocked(const float* __restrict__ dout,
                                        const float* __restrict__ out,
                                        const int32_t* __restrict__ argmax, int64_t n,
                                        float* __restrict__ din) {
  for (int64_t j = 0; j < n; ++j) {
    const float g = dout[j] * derivative<kRelu>(out[j]);
    const int32_t at = argmax[j];
    din[j] = at == 0 ? g : 0.0F;
    din[n + j] = at == 1 ? g : 0.0F;
    din[2 * n + j] = at == 2 ? g : 0.0F;
    din[3 * n + j] = at == 3 ? g : 0.0F;
  }
}

// din holds the activated values on entry and their gradients on return.
template <bool kRelu>
LENET_VECTORIZE void avg_unpool_blocked(const float* __restrict__ dout, int64_t n,
                                        float* __restrict__ din) {
  for (int64_t j = 0; j < n; ++j) {
    const float g = dout[j] / 4.0F;
    for (int64_t k = 0; k < 4; ++k) din[k * n + j] = g * derivative<kRelu>(din[k * n + j]);
  }
}

template <bool kRelu>
void pool_forward_channels(Pooling pooling, int64_t channels, int64_t n, float* in, float* out,
                           int32_t* argmax) {
  for (int64_t c = 0; c < channels; ++c) {
    float* src = in + 4 * n * c;
    if (pooling == Pooling::Avg) {
      activate(kRelu ? Activation::ReLU : Activation::Tanh, src, 4 * n);
      avg_pool_blocked(src, n, out + n * c);
    } else {
      max_pool_blocked<kRelu>(src, n, out + n * c, argmax + n * c);
    }
  }
  if (pooling == Pooling::Max && !kRelu) tanh_inplace(out, channels * n);
}

template <bool kRelu>
void pool_backward_channels(Pooling pooling, int64_t channels, int64_t n, const float* dout,
                            const float* out, const int32_t* argmax, float* din) {
  for (int64_t c = 0; c < channels; ++c) {
    if (pooling == Pooling::Avg) {
      avg_unpool_blocked<kRelu>(dout + n * c, n, din + 4 * n * c);
    } else {
      max_unpool_blocked<kRelu>(dout + n * c, out + n * c, argmax + n * c, n, din + 4 * n * c);
    }
  }
}

}  // namespace

void normalize_pixels(const uint8_t* pixels, int64_t count, float mean, float std, float* out) {
  float table[256];
  for (int value = 0; value < 256; ++value) {
    table[value] = (static_cast<float>(value) / 255.0F - mean) / std;
  }
  for (int64_t j = 0; j < count; ++j) out[j] = table[pixels[j]];
}

void load_images(const float* images, int64_t count, float* x) {
  std::fill(x, x + kPadded * kPadded * L, 0.0F);
  for (int64_t i = 0; i < count; ++i) {
    const float* image = images + i * kImage * kImage;
    for (int64_t y = 0; y < kImage; ++y) {
      float* row = x + ((y + 2) * kPadded + 2) * L + i;
      for (int64_t col = 0; col < kImage; ++col) row[col * L] = image[y * kImage + col];
    }
  }
}

namespace {

// The vector kernels below (the matrix products and conv1) keep their sums in registers. They
// are templates over the vector type (a GCC/Clang vector extension), so each instruction set
// gets its own width: 4 lanes without AVX (SSE, NEON), 8 with AVX2, 16 on AVX-512, and a block
// of accumulators fills about half the vector registers (wider types spill and run 10x
// slower). Lanes never mix and every sum runs in the order the loops fix, so the width changes
// the speed, never a bit of the result.
// (The helpers that take or return a vector are always inlined, so GCC's note that passing
// such a vector by value changes the ABI between instruction sets does not apply: -Wpsabi off.)
#pragma GCC diagnostic ignored "-Wpsabi"
using Vec4 = float __attribute__((vector_size(16)));
using Vec8 = float __attribute__((vector_size(32)));
using Vec16 = float __attribute__((vector_size(64)));

template <class V>
constexpr int64_t kWidth = static_cast<int64_t>(sizeof(V) / sizeof(float));

// The vector at p, and back: memcpy makes no alignment assumption (rows such as the
// transposed inputs' are not aligned) and compiles to one unaligned vector move.
template <class V>
__attribute__((always_inline)) inline V load_v(const float* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
template <class V>
__attribute__((always_inline)) inline void store_v(float* p, V v) {
  __builtin_memcpy(p, &v, sizeof v);
}

// Every product-sum of these kernels is a fused multiply-add, a * b + c with one rounding,
// written out rather than left to the compiler (the build forbids contracting a * b + c), so
// all variants run the same operations and give the same bits. AVX-512 and AVX2 use their FMA
// instructions; other vectors go lane by lane through fmaf, which the compiler turns into the
// target's vector FMA where it has one (NEON, the 4-lane tails of the x86 variants) and into
// calls to libm's fmaf on x86-64 without FMA (CPUs before 2013, or a build pinned to the
// baseline ISA: slow, same bits). The x86 overloads carry their instruction set, so they are
// inlined only into kernels compiled for it (LENET_KERNEL below flattens each one).
__attribute__((always_inline)) inline float fma_s(float a, float b, float c) {
  return __builtin_fmaf(a, b, c);
}
template <class V>
__attribute__((always_inline)) inline V fma_v(V a, V b, V c) {
  V out;
  for (int64_t e = 0; e < kWidth<V>; ++e) out[e] = fma_s(a[e], b[e], c[e]);
  return out;
}
// a in every lane
template <class V>
__attribute__((always_inline)) inline V fma_v(float a, V b, V c) {
  V out;
  for (int64_t e = 0; e < kWidth<V>; ++e) out[e] = fma_s(a, b[e], c[e]);
  return out;
}
#if defined(__x86_64__)
__attribute__((target("avx512f"))) inline Vec16 fma_v(Vec16 a, Vec16 b, Vec16 c) {
  return _mm512_fmadd_ps(a, b, c);
}
__attribute__((target("avx512f"))) inline Vec16 fma_v(float a, Vec16 b, Vec16 c) {
  return _mm512_fmadd_ps(_mm512_set1_ps(a), b, c);
}
__attribute__((target("avx2,fma"))) inline Vec8 fma_v(Vec8 a, Vec8 b, Vec8 c) {
  return _mm256_fmadd_ps(a, b, c);
}
__attribute__((target("avx2,fma"))) inline Vec8 fma_v(float a, Vec8 b, Vec8 c) {
  return _mm256_fmadd_ps(_mm256_set1_ps(a), b, c);
}
#endif

// Rows [i, i + kRows) of lane_gemm, kGroup columns at a time: the accumulators stay in
// registers. Columns past the last multiple of kGroup are summed one by one, in the same order.
template <class V, int64_t kRows, int64_t kGroup>
__attribute__((always_inline)) inline void lane_gemm_rows(int64_t i, int64_t k, int64_t n,
                                                          const float* __restrict__ a,
                                                          int64_t a_row, int64_t a_col,
                                                          const float* __restrict__ b,
                                                          int64_t ldb, float* __restrict__ c,
                                                          int64_t ldc) {
  constexpr int64_t kVecs = kGroup / kWidth<V>;
  int64_t col = 0;
  for (; col + kGroup <= n; col += kGroup) {
    V acc[kRows][kVecs] = {};
    for (int64_t j = 0; j < k; ++j) {
      const float* v = (b + j * ldb + col);
      for (int64_t r = 0; r < kRows; ++r) {
        const float w = a[(i + r) * a_row + j * a_col];
        for (int64_t h = 0; h < kVecs; ++h) {
          acc[r][h] = fma_v(w, load_v<V>(v + h * kWidth<V>), acc[r][h]);
        }
      }
    }
    for (int64_t r = 0; r < kRows; ++r) {
      float* out = (c + (i + r) * ldc + col);
      for (int64_t h = 0; h < kVecs; ++h) store_v(out + h * kWidth<V>, acc[r][h]);
    }
  }
  for (; col < n; ++col) {
    for (int64_t r = 0; r < kRows; ++r) {
      float sum = 0.0F;
      for (int64_t j = 0; j < k; ++j) {
        sum = fma_s(a[(i + r) * a_row + j * a_col], b[j * ldb + col], sum);
      }
      c[(i + r) * ldc + col] = sum;
    }
  }
}

// One strip of columns [col, col + width) of lane_gemm, all rows of it: the strip of b
// (k x kGroup floats) stays in the L1 cache while every block of rows uses it.
template <class V, int64_t kGroup>
__attribute__((always_inline)) inline void lane_gemm_strip(int64_t col, int64_t width, int64_t m,
                                                           int64_t k, const float* a,
                                                           int64_t a_row, int64_t a_col,
                                                           const float* b, int64_t ldb, float* c,
                                                           int64_t ldc) {
  constexpr int64_t kRows = 4;
  int64_t i = 0;
  for (; i + kRows <= m; i += kRows) {
    lane_gemm_rows<V, kRows, kGroup>(i, k, width, a, a_row, a_col, b + col, ldb, c + col, ldc);
  }
  for (; i < m; ++i) {
    lane_gemm_rows<V, 1, kGroup>(i, k, width, a, a_row, a_col, b + col, ldb, c + col, ldc);
  }
}

template <class V>
__attribute__((always_inline)) inline void lane_gemm_with(int64_t m, int64_t k, int64_t n,
                                                          const float* a, int64_t a_row,
                                                          int64_t a_col, const float* b,
                                                          int64_t ldb, float* c, int64_t ldc) {
  // Strips of two vectors (4 x 2 accumulators a block of rows), then the columns left in strips
  // of one vector and of 4 lanes, then one by one: a layer's odd width (401, 121, 85 with the
  // bias) costs few scalar sums. Every column's sums run in the same order in each kind.
  constexpr int64_t kWide = 2 * kWidth<V>;
  int64_t col = 0;
  for (; col + kWide <= n; col += kWide) {
    lane_gemm_strip<V, kWide>(col, kWide, m, k, a, a_row, a_col, b, ldb, c, ldc);
  }
  for (; col + kWidth<V> <= n; col += kWidth<V>) {
    lane_gemm_strip<V, kWidth<V>>(col, kWidth<V>, m, k, a, a_row, a_col, b, ldb, c, ldc);
  }
  for (; col + 4 <= n; col += 4) lane_gemm_strip<Vec4, 4>(col, 4, m, k, a, a_row, a_col, b, ldb, c, ldc);
  if (col < n) lane_gemm_strip<Vec4, 4>(col, n - col, m, k, a, a_row, a_col, b, ldb, c, ldc);
}

// The fixed pairwise tree over kLanes partial sums.
__attribute__((always_inline)) inline float tree_sum(float (&t)[L]) {
  for (int64_t width = L / 2; width >= 1; width /= 2) {
    for (int64_t i = 0; i < width; ++i) t[i] = t[i] + t[i + width];
  }
  return t[0];
}

// Rows [i, i + kRows) of lane_dot against rows [j, j + kCols) of x. Each output has kLanes
// partial sums (partial l adds the terms q = l mod kLanes in ascending q). They are worked
// through one vector of lanes at a time over a chunk of q that stays in the L1 cache, so a
// block needs one accumulator per output; between chunks the partials wait in memory (a float
// store and load are exact, so no sum changes order). Then the tree.
constexpr int64_t kDotChunk = 16 * L;

template <class V, int64_t kRows, int64_t kCols>
__attribute__((always_inline)) inline void lane_dot_block(int64_t i, int64_t j, int64_t length,
                                                          const float* __restrict__ d,
                                                          int64_t ldd,
                                                          const float* __restrict__ x,
                                                          int64_t ldx, float* __restrict__ c,
                                                          int64_t ldc) {
  float partials[kRows][kCols][L] = {};
  for (int64_t q0 = 0; q0 < length; q0 += kDotChunk) {
    const int64_t q1 = std::min(length, q0 + kDotChunk);
    for (int64_t lane = 0; lane < L; lane += kWidth<V>) {
      V acc[kRows][kCols];
      for (int64_t r = 0; r < kRows; ++r) {
        for (int64_t s = 0; s < kCols; ++s) acc[r][s] = load_v<V>(partials[r][s] + lane);
      }
      for (int64_t q = q0 + lane; q < q1; q += L) {
        V xv[kCols];
        for (int64_t s = 0; s < kCols; ++s) xv[s] = load_v<V>(x + (j + s) * ldx + q);
        for (int64_t r = 0; r < kRows; ++r) {
          const V g = load_v<V>(d + (i + r) * ldd + q);
          for (int64_t s = 0; s < kCols; ++s) acc[r][s] = fma_v(g, xv[s], acc[r][s]);
        }
      }
      for (int64_t r = 0; r < kRows; ++r) {
        for (int64_t s = 0; s < kCols; ++s) store_v(partials[r][s] + lane, acc[r][s]);
      }
    }
  }
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t s = 0; s < kCols; ++s) c[(i + r) * ldc + j + s] = tree_sum(partials[r][s]);
  }
}

template <class V>
__attribute__((always_inline)) inline void lane_dot_with(int64_t m, int64_t n, int64_t length,
                                                         const float* d, int64_t ldd,
                                                         const float* x, int64_t ldx, float* c,
                                                         int64_t ldc) {
  // Blocks of kRows rows of d against 4 rows of x (8 or 16 accumulators: what the registers
  // hold). x is the long operand (conv2's im2col: 151 rows), so its rows are the outer loop
  // and each block of them is read from memory once, while the few rows of d stay in cache.
  constexpr int64_t kRows = kWidth<V> == 16 ? 4 : 2, kCols = 4;
  int64_t j = 0;
  for (; j + kCols <= n; j += kCols) {
    int64_t i = 0;
    for (; i + kRows <= m; i += kRows) {
      lane_dot_block<V, kRows, kCols>(i, j, length, d, ldd, x, ldx, c, ldc);
    }
    for (; i < m; ++i) lane_dot_block<V, 1, kCols>(i, j, length, d, ldd, x, ldx, c, ldc);
  }
  for (; j < n; ++j) {
    for (int64_t i = 0; i < m; ++i) lane_dot_block<V, 1, 1>(i, j, length, d, ldd, x, ldx, c, ldc);
  }
}

// conv1 over groups of two vectors of lanes (12 accumulators: the 6 channels).
template <class V>
__attribute__((always_inline)) inline void conv1_forward_with(const float* __restrict__ x,
                                                              const float* __restrict__ weights,
                                                              float* __restrict__ a1) {
  constexpr int64_t kGroup = 2 * kWidth<V>;
  static_assert(L % kGroup == 0, "lanes must fill whole groups");
  for (int64_t y = 0; y < kImage; ++y) {
    for (int64_t col = 0; col < kImage; ++col) {
      const int64_t position = blocked(y, col, kImage);
      for (int64_t group = 0; group < L; group += kGroup) {
        V acc[6][2];
        for (int64_t c = 0; c < 6; ++c) {
          for (int64_t h = 0; h < 2; ++h) acc[c][h] = V{} + weights[c * 26 + 25];
        }
        for (int64_t ky = 0; ky < 5; ++ky) {
          for (int64_t kx = 0; kx < 5; ++kx) {
            const float* v = (x + ((y + ky) * kPadded + col + kx) * L + group);
            for (int64_t c = 0; c < 6; ++c) {
              const float w = weights[c * 26 + ky * 5 + kx];
              for (int64_t h = 0; h < 2; ++h) {
                acc[c][h] = fma_v(w, load_v<V>(v + h * kWidth<V>), acc[c][h]);
              }
            }
          }
        }
        for (int64_t c = 0; c < 6; ++c) {
          float* out = (a1 + (c * 784 + position) * L + group);
          for (int64_t h = 0; h < 2; ++h) store_v(out + h * kWidth<V>, acc[c][h]);
        }
      }
    }
  }
}

// conv1's weight gradient: per lane, the sum over the output pixels in order (10 accumulators:
// the 5 taps of a kernel row), then the fixed lane sum.
template <class V>
__attribute__((always_inline)) inline void conv1_weight_grad_with(const float* __restrict__ x,
                                                                  const float* __restrict__ da1,
                                                                  float* __restrict__ grad) {
  constexpr int64_t kGroup = 2 * kWidth<V>;
  for (int64_t c = 0; c < 6; ++c) {
    float bias[L] = {};
    for (int64_t y = 0; y < kImage; ++y) {
      for (int64_t col = 0; col < kImage; ++col) {
        add_lanes(da1 + (c * 784 + blocked(y, col, kImage)) * L, bias);
      }
    }
    grad[c * 26 + 25] = sum_lanes(bias);
    for (int64_t ky = 0; ky < 5; ++ky) {
      float lanes[5][L];
      for (int64_t group = 0; group < L; group += kGroup) {
        V acc[5][2] = {};
        for (int64_t y = 0; y < kImage; ++y) {
          for (int64_t col = 0; col < kImage; ++col) {
            const float* d = (da1 + (c * 784 + blocked(y, col, kImage)) * L + group);
            for (int64_t kx = 0; kx < 5; ++kx) {
              const float* v = (x + ((y + ky) * kPadded + col + kx) * L + group);
              for (int64_t h = 0; h < 2; ++h) {
                const int64_t at = h * kWidth<V>;
                acc[kx][h] = fma_v(load_v<V>(d + at), load_v<V>(v + at), acc[kx][h]);
              }
            }
          }
        }
        for (int64_t kx = 0; kx < 5; ++kx) {
          for (int64_t h = 0; h < 2; ++h) store_v(lanes[kx] + group + h * kWidth<V>, acc[kx][h]);
        }
      }
      for (int64_t kx = 0; kx < 5; ++kx) grad[c * 26 + ky * 5 + kx] = sum_lanes(lanes[kx]);
    }
  }
}

// One compiled version of the vector kernels per instruction set, picked once at load time:
// the choice target_clones makes for the other kernels, made by hand because the versions
// differ in their vector type. A build pinned to one instruction set (LENET_CPP_ISA) has one.
#if defined(LENET_CPP_DISPATCH)
struct VectorKernels {
  decltype(&lane_gemm) gemm;
  decltype(&lane_dot) dot;
  decltype(&conv1_forward) conv1;
  decltype(&conv1_weight_grad) conv1_grad;
};

#define LENET_VECTOR_KERNELS(NAME, ISA, V)                                                         \
  LENET_KERNEL ISA void NAME##_gemm(int64_t m, int64_t k, int64_t n, const float* a,               \
                                   int64_t a_row, int64_t a_col, const float* b, int64_t ldb,      \
                                   float* c, int64_t ldc) {                                        \
    lane_gemm_with<V>(m, k, n, a, a_row, a_col, b, ldb, c, ldc);                                   \
  }                                                                                                \
  LENET_KERNEL ISA void NAME##_dot(int64_t m, int64_t n, int64_t length, const float* d,           \
                                  int64_t ldd, const float* x, int64_t ldx, float* c,              \
                                  int64_t ldc) {                                                   \
    lane_dot_with<V>(m, n, length, d, ldd, x, ldx, c, ldc);                                        \
  }                                                                                                \
  LENET_KERNEL ISA void NAME##_conv1(const float* x, const float* weights, float* a1) {            \
    conv1_forward_with<V>(x, weights, a1);                                                         \
  }                                                                                                \
  LENET_KERNEL ISA void NAME##_conv1_grad(const float* x, const float* da1, float* grad) {         \
    conv1_weight_grad_with<V>(x, da1, grad);                                                       \
  }                                                                                                \
  constexpr VectorKernels NAME##_kernels{NAME##_gemm, NAME##_dot, NAME##_conv1, NAME##_conv1_grad};
LENET_VECTOR_KERNELS(avx512, __attribute__((target("avx512f,fma"))), Vec16)
LENET_VECTOR_KERNELS(avx2, __attribute__((target("avx2,fma"))), Vec8)
LENET_VECTOR_KERNELS(generic, , Vec4)
#undef LENET_VECTOR_KERNELS

VectorKernels pick_vector_kernels() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) return avx512_kernels;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return avx2_kernels;
  return generic_kernels;
}
const VectorKernels kVector = pick_vector_kernels();
#define LENET_VECTOR_CALL(KERNEL, GENERIC, ...) kVector.KERNEL(__VA_ARGS__)
#else
#if defined(__AVX512F__)
using NativeVec = Vec16;
#elif defined(__AVX2__) && defined(__FMA__)
using NativeVec = Vec8;
#else
using NativeVec = Vec4;
#endif
#define LENET_VECTOR_CALL(KERNEL, GENERIC, ...) GENERIC<NativeVec>(__VA_ARGS__)
#endif

}  // namespace

LENET_KERNEL void lane_gemm(int64_t m, int64_t k, int64_t n, const float* a, int64_t a_row,
                            int64_t a_col, const float* b, int64_t ldb, float* c, int64_t ldc) {
  LENET_VECTOR_CALL(gemm, lane_gemm_with, m, k, n, a, a_row, a_col, b, ldb, c, ldc);
}

LENET_KERNEL void lane_dot(int64_t m, int64_t n, int64_t length, const float* d, int64_t ldd,
                           const float* x, int64_t ldx, float* c, int64_t ldc) {
  LENET_VECTOR_CALL(dot, lane_dot_with, m, n, length, d, ldd, x, ldx, c, ldc);
}

LENET_KERNEL void conv1_forward(const float* x, const float* weights, float* a1) {
  LENET_VECTOR_CALL(conv1, conv1_forward_with, x, weights, a1);
}

LENET_KERNEL void conv1_weight_grad(const float* x, const float* da1, float* grad) {
  LENET_VECTOR_CALL(conv1_grad, conv1_weight_grad_with, x, da1, grad);
}

LENET_VECTORIZE void im2col_conv2(const float* p1, float* cols) {
  constexpr int64_t ld = 100 * L;
  for (int64_t c = 0; c < 6; ++c) {
    for (int64_t ky = 0; ky < 5; ++ky) {
      for (int64_t kx = 0; kx < 5; ++kx) {
        float* row = cols + (c * 25 + ky * 5 + kx) * ld;
        for (int64_t y = 0; y < 10; ++y) {
          for (int64_t col = 0; col < 10; ++col) {
            const float* src = p1 + ((c * 14 + y + ky) * 14 + col + kx) * L;
            copy_lanes(src, row + blocked(y, col, 10) * L);
          }
        }
      }
    }
  }
}

LENET_VECTORIZE void col2im_conv2(const float* dcols, float* dp1) {
  constexpr int64_t ld = 100 * L;
  std::fill(dp1, dp1 + 6 * 196 * L, 0.0F);
  for (int64_t c = 0; c < 6; ++c) {
    for (int64_t ky = 0; ky < 5; ++ky) {
      for (int64_t kx = 0; kx < 5; ++kx) {
        const float* row = dcols + (c * 25 + ky * 5 + kx) * ld;
        for (int64_t y = 0; y < 10; ++y) {
          for (int64_t col = 0; col < 10; ++col) {
            add_lanes(row + blocked(y, col, 10) * L, dp1 + ((c * 14 + y + ky) * 14 + col + kx) * L);
          }
        }
      }
    }
  }
}

void pool_forward(Activation activation, Pooling pooling, int64_t channels, int64_t n, float* in,
                  float* out, int32_t* argmax) {
  if (activation == Activation::ReLU) {
    pool_forward_channels<true>(pooling, channels, n, in, out, argmax);
  } else {
    pool_forward_channels<false>(pooling, channels, n, in, out, argmax);
  }
}

void pool_backward(Activation activation, Pooling pooling, int64_t channels, int64_t n,
                   const float* dout, const float* out, const int32_t* argmax, float* din) {
  if (activation == Activation::ReLU) {
    pool_backward_channels<true>(pooling, channels, n, dout, out, argmax, din);
  } else {
    pool_backward_channels<false>(pooling, channels, n, dout, out, argmax, din);
  }
}

LENET_VECTORIZE void activate(Activation activation, float* x, int64_t count) {
  if (activation == Activation::Tanh) {
    tanh_inplace(x, count);
    return;
  }
  for (int64_t j = 0; j < count; ++j) x[j] = std::max(x[j], 0.0F);
}

LENET_VECTORIZE void activation_backward(Activation activation, const float* __restrict__ y,
                                         float* __restrict__ grad, int64_t count) {
  if (activation == Activation::ReLU) {
    for (int64_t j = 0; j < count; ++j) grad[j] *= derivative<true>(y[j]);
  } else {
    for (int64_t j = 0; j < count; ++j) grad[j] *= derivative<false>(y[j]);
  }
}

LossTotals softmax_cross_entropy(const float* logits, const int64_t* labels, int64_t count,
                                 float scale, float* dlogits, std::optional<float> competitor) {
  constexpr int64_t kClasses = 10;
  std::fill(dlogits, dlogits + kClasses * L, 0.0F);
  LossTotals totals;
  for (int64_t i = 0; i < count; ++i) {
    float z[kClasses];
    for (int64_t j = 0; j < kClasses; ++j) z[j] = logits[j * L + i];
    const int64_t best = std::max_element(z, z + kClasses) - z;
    const float top = competitor ? std::max(z[best], *competitor) : z[best];
    float e[kClasses];
    float sum = competitor ? fixed_math::exp(*competitor - top) : 0.0F;
    for (int64_t j = 0; j < kClasses; ++j) {
      e[j] = fixed_math::exp(z[j] - top);
      sum += e[j];
    }
    const int64_t label = labels[i];
    totals.loss_sum += static_cast<double>(fixed_math::log(sum) - (z[label] - top));
    totals.correct += best == label ? 1 : 0;
    const float inverse = scale / sum;
    for (int64_t j = 0; j < kClasses; ++j) dlogits[j * L + i] = e[j] * inverse;
    dlogits[label * L + i] -= scale;
  }
  return totals;
}

void transpose(const float* in, int64_t rows, int64_t cols, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t col = 0; col < cols; ++col) out[col * rows + r] = in[r * cols + col];
  }
}

LENET_VECTORIZE void add(float* __restrict__ acc, const float* __restrict__ x, int64_t count) {
  for (int64_t j = 0; j < count; ++j) acc[j] += x[j];
}

LENET_VECTORIZE void sgd(float* __restrict__ param, float* __restrict__ momentum_buffer,
                         const float* __restrict__ grad, int64_t count, float learning_rate,
                         float momentum, float weight_decay, bool first_step) {
  if (momentum == 0.0F) {
    for (int64_t j = 0; j < count; ++j) {
      param[j] -= learning_rate * (grad[j] + weight_decay * param[j]);
    }
    return;
  }
  const float keep = first_step ? 0.0F : momentum;  // the first buffer is d itself
  for (int64_t j = 0; j < count; ++j) {
    const float d = grad[j] + weight_decay * param[j];
    momentum_buffer[j] = keep * momentum_buffer[j] + d;
    param[j] -= learning_rate * momentum_buffer[j];
  }
}

}  // namespace lenet::kernels
