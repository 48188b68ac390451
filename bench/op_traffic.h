#pragma once
// Bytes each kernel moves through DRAM, for the benchmarks' GB/s columns. Two counts per op:
//
//   minimal  what the op's contract forces any implementation to read and write once: its inputs, its
//            outputs, and, for a backward that accumulates (Grad::Accumulate), the old value of dx. The
//            engine runs every backward in overwrite mode (Grad::Overwrite, the default here): each
//            activation of this model has one consumer, whose backward gets a fresh, unfilled gradient
//            buffer, so dx is written and not read. This is the figure compared with the device's measured
//            copy bandwidth.
//   ours     what our implementation's passes read and write, counting each pass over a tensor. It differs
//            from `minimal` only where we make several passes (batchnorm's statistics).
//
// Per-channel vectors (gamma, beta, mean, invstd: a few hundred bytes) and reduction partials are left
// out. Counts are of float elements actually needed.
#include <cstdint>

#include "kernels/common/nchw_dims.h"

namespace mriae::bench {

struct Traffic {
  double minimal = 0, ours = 0;  // bytes
};

constexpr double kF = 4;  // bytes per float (and per int32 index)

// How a backward kernel writes its input gradient: added to the old dx, or over it.
enum class Grad { Accumulate, Overwrite };
inline double dx_passes(Grad g) { return g == Grad::Accumulate ? 2 : 1; }

inline Traffic same(double bytes) { return {bytes, bytes}; }

// y = f(x): read x, write y.
inline Traffic elementwise_forward(int64_t n) { return same(2 * kF * double(n)); }
// dx += f(x or y, dy): read x (or y), dy and dx, write dx. Overwriting: dx is not read.
inline Traffic elementwise_backward(int64_t n, Grad g = Grad::Overwrite) {
  return same((2 + dx_passes(g)) * kF * double(n));
}

// Training forward: read x, write y. Ours reads x three times: the sum, the squared deviations (two
// passes for a variance that does not cancel), and the normalisation. Statistics of the whole batch must
// be complete before any output is written, so an implementation that cannot hold x on chip (the model's
// activations are 60-500 MB at batch 128) reads it at least twice; `minimal` is the ideal bound.
inline Traffic batchnorm_forward_train(const NchwDims& d) {
  const double n = double(d.count());
  return {2 * kF * n, 4 * kF * n};
}
// Inference forward: read x, write y, in one pass.
inline Traffic batchnorm_forward_eval(const NchwDims& d) { return same(2 * kF * double(d.count())); }
// Backward: read x, dy and dx, write dx. Ours first reads x and dy for the channel sums of dy and dy*xhat.
inline Traffic batchnorm_backward(const NchwDims& d, Grad g = Grad::Overwrite) {
  const double n = double(d.count()), dx = dx_passes(g);
  return {(2 + dx) * kF * n, (4 + dx) * kF * n};
}

// xd is the input's shape. Forward: read x, write y and the int32 argmax, each a quarter of x.
inline Traffic maxpool_forward(const NchwDims& xd) {
  const double n = double(xd.count()), m = double(int64_t(xd.n) * xd.c * (xd.h / 2) * (xd.w / 2));
  return same(kF * (n + 2 * m));
}
// Backward: read dy and argmax, read and write the one dx element of each window that they name.
// Overwriting, every element of dx must be written (zero where no window's maximum was), four times the
// elements that accumulating touches.
inline Traffic maxpool_backward(const NchwDims& xd, Grad g = Grad::Overwrite) {
  const double m = double(int64_t(xd.n) * xd.c * (xd.h / 2) * (xd.w / 2));
  return same(g == Grad::Accumulate ? 4 * kF * m : kF * (2 * m + double(xd.count())));
}

// xd is the input's shape. Forward: read x, write the 4x larger y.
inline Traffic upsample_forward(const NchwDims& xd) { return same(5 * kF * double(xd.count())); }
// Backward: read the 4x larger dy, read and write dx (overwriting: write it only).
inline Traffic upsample_backward(const NchwDims& xd, Grad g = Grad::Overwrite) {
  return same((4 + dx_passes(g)) * kF * double(xd.count()));
}

// Loss: read y and t (the loss itself is one float).
inline Traffic mse_forward(int64_t n) { return same(2 * kF * double(n)); }
// dy += scale * (y - t): read y, t and dy, write dy (overwriting: write it only).
inline Traffic mse_backward(int64_t n, Grad g = Grad::Overwrite) {
  return same((2 + dx_passes(g)) * kF * double(n));
}

// Read p, acc and g; write p and acc.
inline Traffic rmsprop(int64_t n) { return same(5 * kF * double(n)); }

// Keras rule, per channel: read the hidden mean and variance and the batch mean and variance; write the
// hidden and published (moving) mean and variance.
inline Traffic bn_moving_update(int channels) { return same(8 * kF * double(channels)); }

// Multiply-adds of a 3x3 'same' convolution of xd to k channels, counted as 2 flops each: the same count
// for forward, backward data and backward filter (the bias gradient's N*K*H*W additions are left out).
// cuDNN's Winograd and FFT algorithms do fewer, so theirs is an effective rate.
inline double conv3x3_flops(const NchwDims& xd, int k) {
  return 2.0 * double(xd.n) * double(k) * double(xd.c) * 9.0 * double(xd.h) * double(xd.w);
}

}  // namespace mriae::bench
