#pragma once
// 3x3 convolution, stride 1, 'same' zero padding, with bias, computed directly on a zero-padded copy of the
// input. Measured on this model's shapes, direct kernels beat im2col + OpenBLAS GEMM: the 9x im2col buffer
// and the GEMM's packing of it cost more than the multiply itself (bench/NOTES.md).
//
// Backward: the input gradient of a 'same' 3x3 convolution is itself one (dy with the kernel transposed in
// channels and flipped in space); the weight gradient is a correlation of dy with the padded input. The
// channel-blocked kernels pad band by band in cache; the row kernels work on padded copies.
// Backward passes accumulate into their outputs (dx can be overwritten instead: accumulate_dx). Templated
// on the scalar so tests run it in double.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "kernels/cpu/clones.h"
#include "kernels/cpu/conv2d_blocked.h"
#include "kernels/cpu/conv2d_layout.h"
#include "kernels/cpu/conv2d_one_channel.h"
#include "kernels/cpu/conv2d_rows.h"

namespace mriae::cpu {

// What an inference pass fuses into a convolution (conv3x3_forward), each with the same bits as the op it
// replaces run on its own:
// - bn (or null): the inference batchnorm of relu(y), in place, on each stretch of y while it is in cache
//   (batchnorm_forward_eval<T, true>);
// - upsampled_x: the input is upsample2(x), made band by band as the kernels pad it (x holds [N, C, H/2,
//   W/2], the shape passed is the upsampled one, so H and W are even);
// - pooled (or null): y is not written; its 2x2 max pooling (maxpool2_forward's values) goes to pooled,
//   [N, K, H/2, W/2], from each band of rows while it is in cache. Channel-blocked kernels only
//   (conv3x3_fuses_pooling).
template <typename T> struct ConvFusion {
  const ReluBatchnormEval<T>* bn = nullptr;
  bool upsampled_x = false;
  T* pooled = nullptr;
};

namespace conv_detail {
// Layers with fewer output channels than a vector block use the row kernels. So do convolutions of a single
// input channel (conv1, and conv11's input gradient), whose blocked tiles spend more on their transposed
// stores than on their 9 multiply-adds per input value, and the weight gradient of layers with few input
// channels, whose blocked form is bound by re-blocking dy.
inline bool use_blocked(int in_channels, int out_channels) { return out_channels >= kLanes && in_channels > 1; }
inline bool use_blocked_weight_grad(int in_channels, int out_channels) {
  return out_channels >= kLanes && in_channels >= kLanes;
}

// db[o] += the sum of dy over images and pixels, in double: that keeps the CPU path a trustworthy oracle.
// Cloned so that the double sums run 8 wide where AVX-512 is there.
template <typename T> MRIAE_CPU_CLONES void bias_grad(const T* dy, T* db, const NchwDims& dyd) {
  const int64_t plane = dyd.plane();
  const int n_images = dyd.n, k = dyd.c;
#pragma omp parallel for schedule(static)
  for (int o = 0; o < k; ++o) {
    double s = 0;
    for (int n = 0; n < n_images; ++n) {
      const T* g = dy + (int64_t(n) * k + o) * plane;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < plane; ++i) s += g[i];
    }
    db[o] += T(s);
  }
}

// Elements of the band buffers of forward_blocked_banded, one per OpenMP thread.
inline int64_t forward_bands_elems(const NchwDims& d) { return int64_t(omp_get_max_threads()) * forward_band_elems(d); }

// y = (or +=) conv(x) + b, with fuse's work (see ConvFusion) on the way. The blocked and the one-channel kernels
// pad x band by band in cache (in `bands`); the row kernels read a padded copy of the whole input, which they
// make in xp. pool_bands: the blocked kernels' output bands, when they pool.
template <typename T>
void forward_any(const T* x, T* xp, T* bands, const T* w, const T* b, T* y, const NchwDims& d, int k, const Padded& p,
                 T* wb, bool flip, bool accumulate, const ConvFusion<T>& fuse = {}, T* pool_bands = nullptr) {
  // flip: w is the forward kernel [K, C, 3, 3] of a layer whose input gradient this is; d.c is then that
  // layer's K and k its C.
  if (use_blocked(d.c, k)) {
    block_weights(w, wb, flip ? d.c : k, flip ? k : d.c, flip);
    forward_blocked_banded(x, wb, b, y, d, k, accumulate, bands, fuse.bn, fuse.upsampled_x, fuse.pooled, pool_bands);
    return;
  }
  if (fuse.pooled) throw std::logic_error("conv3x3: pooling fused into a convolution that is not channel-blocked");
  const T* wk = w;
  if (flip) {
    for (int o = 0; o < d.c; ++o)
      for (int c = 0; c < k; ++c)
        for (int t = 0; t < 9; ++t) wb[(int64_t(c) * d.c + o) * 9 + (8 - t)] = w[(int64_t(o) * k + c) * 9 + t];
    wk = wb;
  }
  if (k == 1) {
    forward_one_channel_banded(x, wk, b, y, d, accumulate, bands, fuse.bn, fuse.upsampled_x);
    return;
  }
  pad(x, xp, d, p, fuse.upsampled_x);
  forward_rows(xp, wk, b, y, d, k, p, accumulate, fuse.bn);
}
}  // namespace conv_detail

inline int64_t conv3x3_blocked_weight_elems(const NchwDims& x, int k) {
  using namespace conv_detail;
  return int64_t(std::max(lane_blocks(k, kOutLanes) * kOutLanes * x.c, lane_blocks(x.c, kOutLanes) * kOutLanes * k)) * 9;
}

// Scratch elements needed by conv3x3_forward: a padded input (for the row kernels), the re-blocked weights,
// the band buffers and those of the output bands that are pooled. Depends on the OpenMP thread count.
inline int64_t conv3x3_forward_scratch_elems(const NchwDims& x, int k) {
  return int64_t(x.n) * x.c * conv_detail::Padded(x).plane + conv3x3_blocked_weight_elems(x, k) +
         conv_detail::forward_bands_elems(x) +
         int64_t(omp_get_max_threads()) * conv_detail::forward_pool_band_elems(x, k);
}

// Whether conv3x3_forward can pool its output (ConvFusion::pooled) for these channel counts: only the
// channel-blocked kernels work in bands of whole rows of every output channel.
inline bool conv3x3_fuses_pooling(int in_channels, int out_channels) {
  return conv_detail::use_blocked(in_channels, out_channels);
}

// Scratch elements needed by conv3x3_backward (enough for conv3x3_forward too). Depends on the OpenMP thread
// count.
inline int64_t conv3x3_scratch_elems(const NchwDims& x, int k) {
  using namespace conv_detail;
  const Padded p(x);
  const int64_t widest = std::max(x.c, k);
  const int64_t padded = int64_t(x.n) * widest * p.plane;
  const NchwDims widest_d{x.n, int(widest), x.h, x.w};
  const int64_t bands =
      std::max(forward_bands_elems(widest_d), int64_t(omp_get_max_threads()) * weight_grad_band_elems(x, k));
  return 2 * padded + std::max(conv3x3_blocked_weight_elems(x, k), weight_grad_partial_elems(x, k)) + bands +
         int64_t(omp_get_max_threads()) * forward_pool_band_elems(x, k);
}

// y = conv(x, w) + b, or y += conv(x, w) + b with accumulate. w is [K, C, 3, 3]; b may be null. With fuse
// (inference only, not with accumulate), the ops around the convolution that would each make a pass over
// memory of their own, run inside it (ConvFusion) with the same bits as the ops in turn. Scratch:
// conv3x3_forward_scratch_elems(xd, k).
template <typename T>
void conv3x3_forward(const T* x, const T* w, const T* b, T* y, const NchwDims& xd, int k, T* scratch,
                     bool accumulate = false, const ConvFusion<T>& fuse = {}) {
  using namespace conv_detail;
  if ((fuse.bn || fuse.pooled) && accumulate)
    throw std::invalid_argument("conv3x3_forward: a fused batchnorm or pooling on an accumulated output");
  if (fuse.upsampled_x && (xd.h % 2 || xd.w % 2))
    throw std::invalid_argument("conv3x3_forward: an upsampled input of odd height or width");
  if (fuse.pooled && !conv3x3_fuses_pooling(xd.c, k))
    throw std::invalid_argument("conv3x3_forward: pooling is fused only into channel-blocked convolutions");
  const Padded p(xd);
  T* xp = scratch;
  T* wb = xp + int64_t(xd.n) * xd.c * p.plane;
  T* bands = wb + conv3x3_blocked_weight_elems(xd, k);
  T* pool_bands = bands + forward_bands_elems(xd);
  forward_any(x, xp, bands, w, b, y, xd, k, p, wb, false, accumulate, fuse, pool_bands);
}

// Accumulates dx, dw and db (each may be null) from dy; with accumulate_dx = false, dx is overwritten instead.
// Scratch: conv3x3_scratch_elems(xd, k).
template <typename T>
void conv3x3_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* db, const NchwDims& xd, int k, T* scratch,
                      bool accumulate_dx = true) {
  using namespace conv_detail;
  const Padded p(xd);
  const NchwDims dyd{xd.n, k, xd.h, xd.w};
  const int64_t padded = int64_t(xd.n) * std::max(xd.c, k) * p.plane;
  T* xp = scratch;
  T* dyp = xp + padded;
  T* wb = dyp + padded;
  T* bands = wb + std::max(conv3x3_blocked_weight_elems(xd, k), weight_grad_partial_elems(xd, k));
  if (db) bias_grad(dy, db, dyd);
  if (dw) {
    if (use_blocked_weight_grad(xd.c, k)) {
      weight_grad_blocked(x, dy, dw, wb, xd, k, bands);
    } else {
      pad(x, xp, xd, p);
      pitch_rows(dy, dyp, dyd, p);
      weight_grad_rows(xp, dyp, dw, xd, k, p);
    }
  }
  if (dx) forward_any(dy, dyp, bands, w, static_cast<const T*>(nullptr), dx, dyd, xd.c, p, wb, true, accumulate_dx);
}

}  // namespace mriae::cpu
