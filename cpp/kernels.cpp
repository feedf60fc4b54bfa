#include "kernels.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

// The Fortran BLAS entry point; libtorch links (and exports) a BLAS that provides it.
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c,
                       const int* ldc);

// Hot loops are compiled for several instruction sets and picked at load time, so the package
// stays portable while using the vector units this CPU has.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define LENET_VECTORIZE __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define LENET_VECTORIZE
#endif

namespace lenet::kernels {
namespace {

constexpr int64_t kImage = 28;

// tanh through ATen's vectorised kernel (runs single-threaded inside a parallel region).
void tanh_block(float* x, int64_t rows, int64_t cols, int64_t ld) {
  at::from_blob(x, {rows, cols}, {ld, 1}, at::TensorOptions(at::kFloat)).tanh_();
}

template <bool kRelu>
inline float derivative(float y) {
  if constexpr (kRelu) {
    return y > 0.0F ? 1.0F : 0.0F;
  } else {
    return 1.0F - y * y;
  }
}

// ---- blocked planes: the four values of a window lie `n` floats apart ----

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
  for (int64_t j = 0; j < n; ++j) out[j] = (in[j] + in[n + j] + in[2 * n + j] + in[3 * n + j]) / 4.0F;
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

// ---- row-major planes ----

template <bool kRelu>
void max_pool_plane(const float* in, int64_t size, float* out, int32_t* argmax) {
  const int64_t half = size / 2;
  for (int64_t py = 0; py < half; ++py) {
    const float* top = in + 2 * py * size;
    const float* bottom = top + size;
    for (int64_t px = 0; px < half; ++px) {
      const float window[4] = {top[2 * px], top[2 * px + 1], bottom[2 * px], bottom[2 * px + 1]};
      int32_t best = 0;
      for (int32_t k = 1; k < 4; ++k) {
        if (window[k] > window[best]) best = k;
      }
      out[py * half + px] = kRelu ? std::max(window[best], 0.0F) : window[best];
      argmax[py * half + px] = best;
    }
  }
}

void avg_pool_plane(const float* in, int64_t size, float* out) {
  const int64_t half = size / 2;
  for (int64_t py = 0; py < half; ++py) {
    const float* top = in + 2 * py * size;
    const float* bottom = top + size;
    for (int64_t px = 0; px < half; ++px) {
      const float sum = top[2 * px] + top[2 * px + 1] + bottom[2 * px] + bottom[2 * px + 1];
      out[py * half + px] = sum / 4.0F;
    }
  }
}

template <bool kRelu>
void max_unpool_plane(const float* dout, const float* out, const int32_t* argmax, int64_t size,
                      float* din) {
  const int64_t half = size / 2;
  for (int64_t py = 0; py < half; ++py) {
    float* top = din + 2 * py * size;
    float* bottom = top + size;
    for (int64_t px = 0; px < half; ++px) {
      const int64_t o = py * half + px;
      const float g = dout[o] * derivative<kRelu>(out[o]);
      const int32_t at = argmax[o];
      top[2 * px] = at == 0 ? g : 0.0F;
      top[2 * px + 1] = at == 1 ? g : 0.0F;
      bottom[2 * px] = at == 2 ? g : 0.0F;
      bottom[2 * px + 1] = at == 3 ? g : 0.0F;
    }
  }
}

template <bool kRelu>
void avg_unpool_plane(const float* dout, int64_t size, float* din) {
  const int64_t half = size / 2;
  for (int64_t py = 0; py < half; ++py) {
    float* top = din + 2 * py * size;
    float* bottom = top + size;
    for (int64_t px = 0; px < half; ++px) {
      const float g = dout[py * half + px] / 4.0F;
      for (float* cell : {top + 2 * px, top + 2 * px + 1, bottom + 2 * px, bottom + 2 * px + 1}) {
        *cell = g * derivative<kRelu>(*cell);
      }
    }
  }
}

template <bool kRelu>
void pool_forward_planes(Pooling pooling, int64_t channels, int64_t images, const Planes& in,
                         const Planes& out, int32_t* argmax) {
  const int64_t half = in.size / 2;
  for (int64_t c = 0; c < channels; ++c) {
    if (pooling == Pooling::Avg) {
      // the planes of one channel are evenly spaced: activate them as one strided block
      activate(kRelu ? Activation::ReLU : Activation::Tanh, in.plane(c, 0), images,
               in.size * in.size, in.image_stride);
    }
    for (int64_t i = 0; i < images; ++i) {
      const float* src = in.plane(c, i);
      float* dst = out.plane(c, i);
      int32_t* arg = argmax + (c * images + i) * half * half;
      if (pooling == Pooling::Avg) {
        in.blocked ? avg_pool_blocked(src, half * half, dst) : avg_pool_plane(src, in.size, dst);
      } else {
        in.blocked ? max_pool_blocked<kRelu>(src, half * half, dst, arg)
                   : max_pool_plane<kRelu>(src, in.size, dst, arg);
      }
    }
    if (pooling == Pooling::Max && !kRelu) tanh_block(out.plane(c, 0), images, half * half, out.image_stride);
  }
}

template <bool kRelu>
void pool_backward_planes(Pooling pooling, int64_t channels, int64_t images, const Planes& dout,
                          const Planes& out, const int32_t* argmax, const Planes& din) {
  const int64_t half = din.size / 2;
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t i = 0; i < images; ++i) {
      const float* g = dout.plane(c, i);
      float* dst = din.plane(c, i);
      if (pooling == Pooling::Avg) {
        din.blocked ? avg_unpool_blocked<kRelu>(g, half * half, dst)
                    : avg_unpool_plane<kRelu>(g, din.size, dst);
      } else {
        const int32_t* arg = argmax + (c * images + i) * half * half;
        din.blocked ? max_unpool_blocked<kRelu>(g, out.plane(c, i), arg, half * half, dst)
                    : max_unpool_plane<kRelu>(g, out.plane(c, i), arg, din.size, dst);
      }
    }
  }
}

template <int64_t kCount>
inline void copy_row(const float* src, float* dst) {
  for (int64_t x = 0; x < kCount; ++x) dst[x] = src[x];
}

// An image split by the parity of its (padded) coordinates into four kHalf x kHalf images:
// phase ry*2+rx, row a, column b holds padded pixel (2a+ry, 2b+rx). A 2x2-strided window walk
// over the image becomes contiguous rows of the phases.
template <int64_t kHalf>
class Polyphase {
 public:
  // pixel (y, x) of a size x size image sits at padded position (y + pad, x + pad); the rest
  // of the padded image stays zero.
  void load(const float* image, int64_t size, int64_t pad) {
    for (int64_t y = 0; y < size; ++y) {
      for (int64_t x = 0; x < size; ++x) at(y + pad, x + pad) = image[y * size + x];
    }
  }
  void store(float* image, int64_t size, int64_t pad) const {
    for (int64_t y = 0; y < size; ++y) {
      for (int64_t x = 0; x < size; ++x) image[y * size + x] = at(y + pad, x + pad);
    }
  }
  void clear() { std::fill(&phases_[0][0][0], &phases_[0][0][0] + 4 * kHalf * kHalf, 0.0F); }
  // Row a of the phase holding padded pixels (ty + 2a, tx + 2b), from b = tx / 2 on.
  const float* row(int64_t ty, int64_t tx, int64_t a) const {
    return &phases_[(ty % 2) * 2 + tx % 2][a][tx / 2];
  }
  float* row(int64_t ty, int64_t tx, int64_t a) { return &phases_[(ty % 2) * 2 + tx % 2][a][tx / 2]; }

 private:
  float& at(int64_t y, int64_t x) { return phases_[(y % 2) * 2 + x % 2][y / 2][x / 2]; }
  float at(int64_t y, int64_t x) const { return phases_[(y % 2) * 2 + x % 2][y / 2][x / 2]; }

  float phases_[4][kHalf][kHalf] = {};
};

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float* c, int64_t ldc) {
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
  const char first_trans = trans_b ? 'T' : 'N';
  const char second_trans = trans_a ? 'T' : 'N';
  const int rows = static_cast<int>(n);
  const int cols = static_cast<int>(m);
  const int inner = static_cast<int>(k);
  const int ld_first = static_cast<int>(ldb);
  const int ld_second = static_cast<int>(lda);
  const int ld_out = static_cast<int>(ldc);
  const float one = 1.0F;
  const float zero = 0.0F;
  sgemm_(&first_trans, &second_trans, &rows, &cols, &inner, &one, b, &ld_first, a, &ld_second,
         &zero, c, &ld_out);
}

// In the blocked output order, output pixel (2py+dy, 2px+dx) under tap (ky, kx) reads padded
// input pixel (2py+ty, 2px+tx) with t = d + k: a row of one polyphase component.

void im2col_conv1(const float* images, int64_t images_count, float* cols, int64_t ld) {
  Polyphase<16> image;  // 28x28 padded by 2
  for (int64_t i = 0; i < images_count; ++i) {
    image.load(images + i * kImage * kImage, kImage, 2);
    for (int64_t ky = 0; ky < 5; ++ky) {
      for (int64_t kx = 0; kx < 5; ++kx) {
        float* row = cols + (ky * 5 + kx) * ld + i * kImage * kImage;
        for (int64_t block = 0; block < 4; ++block) {
          const int64_t ty = block / 2 + ky;
          const int64_t tx = block % 2 + kx;
          for (int64_t py = 0; py < 14; ++py) {
            copy_row<14>(image.row(ty, tx, py + ty / 2), row + block * 196 + py * 14);
          }
        }
      }
    }
  }
}

void im2col_conv2(const Planes& p1, int64_t images_count, float* cols, int64_t ld) {
  Polyphase<7> plane;  // 14x14, no padding
  for (int64_t c = 0; c < 6; ++c) {
    for (int64_t i = 0; i < images_count; ++i) {
      plane.load(p1.plane(c, i), 14, 0);
      for (int64_t ky = 0; ky < 5; ++ky) {
        for (int64_t kx = 0; kx < 5; ++kx) {
          float* row = cols + (c * 25 + ky * 5 + kx) * ld + i * 100;
          for (int64_t block = 0; block < 4; ++block) {
            const int64_t ty = block / 2 + ky;
            const int64_t tx = block % 2 + kx;
            for (int64_t py = 0; py < 5; ++py) {
              copy_row<5>(plane.row(ty, tx, py + ty / 2), row + block * 25 + py * 5);
            }
          }
        }
      }
    }
  }
}

void col2im_conv2(const float* dcols, int64_t ld, int64_t images_count, const Planes& dp1) {
  Polyphase<7> plane;
  for (int64_t c = 0; c < 6; ++c) {
    for (int64_t i = 0; i < images_count; ++i) {
      plane.clear();
      for (int64_t ky = 0; ky < 5; ++ky) {
        for (int64_t kx = 0; kx < 5; ++kx) {
          const float* row = dcols + (c * 25 + ky * 5 + kx) * ld + i * 100;
          for (int64_t block = 0; block < 4; ++block) {
            const int64_t ty = block / 2 + ky;
            const int64_t tx = block % 2 + kx;
            for (int64_t py = 0; py < 5; ++py) {
              float* dst = plane.row(ty, tx, py + ty / 2);
              const float* src = row + block * 25 + py * 5;
              for (int64_t x = 0; x < 5; ++x) dst[x] += src[x];
            }
          }
        }
      }
      plane.store(dp1.plane(c, i), 14, 0);
    }
  }
}

void pool_forward(Activation activation, Pooling pooling, int64_t channels, int64_t images,
                  const Planes& in, const Planes& out, int32_t* argmax) {
  if (activation == Activation::ReLU) {
    pool_forward_planes<true>(pooling, channels, images, in, out, argmax);
  } else {
    pool_forward_planes<false>(pooling, channels, images, in, out, argmax);
  }
}

void pool_backward(Activation activation, Pooling pooling, int64_t channels, int64_t images,
                   const Planes& dout, const Planes& out, const int32_t* argmax,
                   const Planes& din) {
  if (activation == Activation::ReLU) {
    pool_backward_planes<true>(pooling, channels, images, dout, out, argmax, din);
  } else {
    pool_backward_planes<false>(pooling, channels, images, dout, out, argmax, din);
  }
}

LENET_VECTORIZE void activate(Activation activation, float* x, int64_t rows, int64_t cols,
                              int64_t ld) {
  if (activation == Activation::Tanh) {
    tanh_block(x, rows, cols, ld);
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * ld;
    for (int64_t j = 0; j < cols; ++j) row[j] = std::max(row[j], 0.0F);
  }
}

LENET_VECTORIZE void activation_backward(Activation activation, const float* y, int64_t ld_y,
                                         float* grad, int64_t ld_grad, int64_t rows,
                                         int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* y_row = y + r * ld_y;
    float* g_row = grad + r * ld_grad;
    if (activation == Activation::ReLU) {
      for (int64_t j = 0; j < cols; ++j) g_row[j] *= derivative<true>(y_row[j]);
    } else {
      for (int64_t j = 0; j < cols; ++j) g_row[j] *= derivative<false>(y_row[j]);
    }
  }
}

LENET_VECTORIZE void add(float* acc, const float* x, int64_t count) {
  for (int64_t j = 0; j < count; ++j) acc[j] += x[j];
}

LENET_VECTORIZE void sgd(float* param, float* momentum_buffer, const float* grad, int64_t count,
                         float learning_rate, float momentum, float weight_decay, bool first_step) {
  if (momentum == 0.0F) {
    for (int64_t j = 0; j < count; ++j) param[j] -= learning_rate * (grad[j] + weight_decay * param[j]);
    return;
  }
  const float keep = first_step ? 0.0F : momentum;  // the first buffer is d itself
  for (int64_t j = 0; j < count; ++j) {
    const float d = grad[j] + weight_decay * param[j];
    momentum_buffer[j] = keep * momentum_buffer[j] + d;
    param[j] -= learning_rate * momentum_buffer[j];
  }
}

LossTotals softmax_cross_entropy(const float* logits, const int64_t* labels, int64_t rows,
                                 float scale, float* dlogits) {
  constexpr int64_t kClasses = 10;
  LossTotals totals;
  for (int64_t r = 0; r < rows; ++r) {
    const float* z = logits + r * kClasses;
    float* dz = dlogits + r * kClasses;
    const int64_t best = std::max_element(z, z + kClasses) - z;
    const float top = z[best];
    float sum = 0.0F;
    for (int64_t j = 0; j < kClasses; ++j) {
      dz[j] = std::exp(z[j] - top);
      sum += dz[j];
    }
    const float log_sum = std::log(sum);
    const int64_t label = labels[r];
    totals.loss_sum += static_cast<double>(log_sum - (z[label] - top));
    totals.correct += best == label ? 1 : 0;
    const float inverse = scale / sum;
    for (int64_t j = 0; j < kClasses; ++j) dz[j] *= inverse;
    dz[label] -= scale;
  }
  return totals;
}

}  // namespace lenet::kernels
