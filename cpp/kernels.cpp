#include "kernels.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>

// The Fortran BLAS entry point; libtorch links (and exports) a BLAS that provides it.
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c,
                       const int* ldc);

namespace lenet::kernels {
namespace {

constexpr int64_t kImage = 28;

void fill(float* dst, int64_t count, float value) { std::fill(dst, dst + count, value); }

// tanh through ATen's vectorised kernel (runs single-threaded inside a parallel region).
void tanh_block(float* x, int64_t rows, int64_t cols, int64_t ld) {
  at::from_blob(x, {rows, cols}, {ld, 1}, at::TensorOptions(at::kFloat)).tanh_();
}

float derivative(Activation activation, float y) {
  return activation == Activation::ReLU ? (y > 0.0F ? 1.0F : 0.0F) : 1.0F - y * y;
}

void max_pool_plane(const float* in, int64_t size, float* out, uint8_t* argmax, bool relu) {
  const int64_t half = size / 2;
  for (int64_t py = 0; py < half; ++py) {
    const float* top = in + 2 * py * size;
    const float* bottom = top + size;
    for (int64_t px = 0; px < half; ++px) {
      const float window[4] = {top[2 * px], top[2 * px + 1], bottom[2 * px], bottom[2 * px + 1]};
      uint8_t best = 0;
      for (uint8_t k = 1; k < 4; ++k) {
        if (window[k] > window[best]) best = k;
      }
      const float value = window[best];
      out[py * half + px] = relu ? std::max(value, 0.0F) : value;
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

void max_unpool_plane(Activation activation, const float* dout, const float* out,
                      const uint8_t* argmax, int64_t size, float* din) {
  const int64_t half = size / 2;
  for (int64_t py = 0; py < half; ++py) {
    float* top = din + 2 * py * size;
    float* bottom = top + size;
    for (int64_t px = 0; px < half; ++px) {
      const int64_t o = py * half + px;
      const float g = dout[o] * derivative(activation, out[o]);
      const uint8_t k = argmax[o];
      top[2 * px] = k == 0 ? g : 0.0F;
      top[2 * px + 1] = k == 1 ? g : 0.0F;
      bottom[2 * px] = k == 2 ? g : 0.0F;
      bottom[2 * px + 1] = k == 3 ? g : 0.0F;
    }
  }
}

// din holds the activated values on entry and their gradients on return.
void avg_unpool_plane(Activation activation, const float* dout, int64_t size, float* din) {
  const int64_t half = size / 2;
  for (int64_t py = 0; py < half; ++py) {
    float* top = din + 2 * py * size;
    float* bottom = top + size;
    for (int64_t px = 0; px < half; ++px) {
      const float g = dout[py * half + px] / 4.0F;
      for (float* cell : {top + 2 * px, top + 2 * px + 1, bottom + 2 * px, bottom + 2 * px + 1}) {
        *cell = g * derivative(activation, *cell);
      }
    }
  }
}

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

void im2col_conv1(const float* images, int64_t images_count, float* cols, int64_t ld) {
  for (int64_t ky = 0; ky < 5; ++ky) {
    for (int64_t kx = 0; kx < 5; ++kx) {
      float* row = cols + (ky * 5 + kx) * ld;
      const int64_t x_begin = std::max<int64_t>(0, 2 - kx);
      const int64_t x_end = std::min<int64_t>(kImage, kImage + 2 - kx);
      for (int64_t i = 0; i < images_count; ++i) {
        for (int64_t y = 0; y < kImage; ++y) {
          float* dst = row + (i * kImage + y) * kImage;
          const int64_t source_y = y + ky - 2;
          if (source_y < 0 || source_y >= kImage) {
            fill(dst, kImage, 0.0F);
            continue;
          }
          const float* src = images + (i * kImage + source_y) * kImage + kx - 2;
          fill(dst, x_begin, 0.0F);
          std::copy(src + x_begin, src + x_end, dst + x_begin);
          fill(dst + x_end, kImage - x_end, 0.0F);
        }
      }
    }
  }
}

void im2col_conv2(const Planes& p1, int64_t images_count, float* cols, int64_t ld) {
  for (int64_t c = 0; c < 6; ++c) {
    for (int64_t ky = 0; ky < 5; ++ky) {
      for (int64_t kx = 0; kx < 5; ++kx) {
        float* row = cols + (c * 25 + ky * 5 + kx) * ld;
        for (int64_t i = 0; i < images_count; ++i) {
          const float* plane = p1.plane(c, i);
          for (int64_t y = 0; y < 10; ++y) {
            const float* src = plane + (y + ky) * 14 + kx;
            std::copy(src, src + 10, row + i * 100 + y * 10);
          }
        }
      }
    }
  }
}

void col2im_conv2(const float* dcols, int64_t ld, int64_t images_count, const Planes& dp1) {
  for (int64_t c = 0; c < 6; ++c) {
    for (int64_t i = 0; i < images_count; ++i) fill(dp1.plane(c, i), 14 * 14, 0.0F);
    for (int64_t ky = 0; ky < 5; ++ky) {
      for (int64_t kx = 0; kx < 5; ++kx) {
        const float* row = dcols + (c * 25 + ky * 5 + kx) * ld;
        for (int64_t i = 0; i < images_count; ++i) {
          float* plane = dp1.plane(c, i);
          for (int64_t y = 0; y < 10; ++y) {
            float* dst = plane + (y + ky) * 14 + kx;
            const float* src = row + i * 100 + y * 10;
            for (int64_t x = 0; x < 10; ++x) dst[x] += src[x];
          }
        }
      }
    }
  }
}

void pool_forward(Activation activation, Pooling pooling, int64_t channels, int64_t images,
                  const Planes& in, const Planes& out, uint8_t* argmax) {
  const int64_t half = in.size / 2;
  if (pooling == Pooling::Avg) {
    for (int64_t c = 0; c < channels; ++c) {
      // the planes of one channel are evenly spaced: activate them as one strided block
      activate(activation, in.plane(c, 0), images, in.size * in.size, in.image_stride);
      for (int64_t i = 0; i < images; ++i) avg_pool_plane(in.plane(c, i), in.size, out.plane(c, i));
    }
    return;
  }
  const bool relu = activation == Activation::ReLU;
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t i = 0; i < images; ++i) {
      max_pool_plane(in.plane(c, i), in.size, out.plane(c, i), argmax + (c * images + i) * half * half,
                     relu);
    }
    if (!relu) tanh_block(out.plane(c, 0), images, half * half, out.image_stride);
  }
}

void pool_backward(Activation activation, Pooling pooling, int64_t channels, int64_t images,
                   const Planes& dout, const Planes& out, const uint8_t* argmax, const Planes& din) {
  const int64_t half = din.size / 2;
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t i = 0; i < images; ++i) {
      if (pooling == Pooling::Max) {
        max_unpool_plane(activation, dout.plane(c, i), out.plane(c, i),
                         argmax + (c * images + i) * half * half, din.size, din.plane(c, i));
      } else {
        avg_unpool_plane(activation, dout.plane(c, i), din.size, din.plane(c, i));
      }
    }
  }
}

void activate(Activation activation, float* x, int64_t rows, int64_t cols, int64_t ld) {
  if (activation == Activation::Tanh) {
    tanh_block(x, rows, cols, ld);
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * ld;
    for (int64_t j = 0; j < cols; ++j) row[j] = std::max(row[j], 0.0F);
  }
}

void activation_backward(Activation activation, const float* y, int64_t ld_y, float* grad,
                         int64_t ld_grad, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* y_row = y + r * ld_y;
    float* g_row = grad + r * ld_grad;
    if (activation == Activation::ReLU) {
      for (int64_t j = 0; j < cols; ++j) g_row[j] = y_row[j] > 0.0F ? g_row[j] : 0.0F;
    } else {
      for (int64_t j = 0; j < cols; ++j) g_row[j] *= 1.0F - y_row[j] * y_row[j];
    }
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
