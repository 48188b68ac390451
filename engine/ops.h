#pragma once
// The differentiable ops of the engine. Each dispatches on its inputs' device to kernels/cpu or
// kernels/cuda (on the CPU also on their dtype, float32 or float64, which all inputs of an op share), and
// records its backward on the tape when one is given and an input needs a gradient.
#include <cstdint>

#include "engine/autograd.h"

namespace mriae {

// What a convolution reads: x itself, or upsample2(x). Where nothing needs a gradient (inference) the CPU makes
// the upsampled input band by band in cache as the convolution pads it, instead of writing it out whole and
// reading it back; elsewhere the two ops run in turn. The same values either way.
enum class ConvInput { AsIs, Upsampled2 };

// 3x3 convolution, stride 1, 'same' zero padding. x [N,C,H,W], w [K,C,3,3], b [K].
Var conv2d3x3(Tape* tape, const Var& x, const Var& w, const Var& b, ConvInput input = ConvInput::AsIs);
Var relu(Tape* tape, const Var& x);
Var sigmoid(Tape* tape, const Var& x);
// 2x2 max pooling, stride 2; the gradient goes to each window's first maximum in row-major order.
Var maxpool2(Tape* tape, const Var& x);
// Nearest-neighbour upsampling by 2 in H and W.
Var upsample2(Tape* tape, const Var& x);

enum class MovingStatsRule {
  Keras,  // Keras 2.2: zero-debiased EMA of the batch mean and the Bessel-corrected batch variance
  Plain,  // PyTorch: EMA of the published statistics, starting from mean 0 and variance 1
};

class Collectives;

// In double so that a float64 model gets the exact hyperparameters; float32 kernels take them rounded.
struct BatchNormOptions {
  double eps = 1e-3;        // Keras' default
  double momentum = 0.99;   // weight of the old value in the moving averages
  MovingStatsRule rule = MovingStatsRule::Keras;
  // Synchronised batchnorm (data parallelism, CPU): the batch is the union of these processes' inputs, and
  // the statistics (and their gradients) are taken over all of it. Null: over this process's input alone.
  Collectives* shared_batch = nullptr;
};

// The non-trainable state of one batchnorm layer. moving_mean and moving_var are what inference uses;
// hidden_* and steps are the Keras rule's bias-corrected EMA state.
struct BatchNormState {
  Tensor moving_mean, moving_var;
  Tensor hidden_mean, hidden_var;
  int64_t steps = 0;

  static BatchNormState create(int64_t channels, Device device, DType dtype = DType::Float32);
};

// training: normalise with the batch statistics and update `state`; otherwise use state's moving statistics.
Var batchnorm(Tape* tape, const Var& x, const Var& gamma, const Var& beta, BatchNormState& state, bool training,
              const BatchNormOptions& options);

// batchnorm(relu(x)), the model's block, as one op that never writes relu(x) out, with the same bits as the
// two ops in sequence on either backend.
Var relu_batchnorm(Tape* tape, const Var& x, const Var& gamma, const Var& beta, BatchNormState& state,
                   bool training, const BatchNormOptions& options);

// relu_batchnorm(conv2d3x3(x, w, b)), the model's block. On the GPU the convolution's bias is added in the
// batchnorm's reads of the convolution output instead of in a pass of its own; the values are the same bits.
// What follows a block: nothing, or maxpool2 (whose result is then the op's).
enum class BlockOutput { AsIs, MaxPooled2 };

// In inference on the CPU the batchnorm runs as the convolution's epilogue, on each stretch of its output while
// that is in cache, and so does a max pooling after it, where the convolution's kernel works in bands of
// whole rows (cpu::conv3x3_fuses_pooling); the block's full-size output is then never written. Elsewhere the
// ops run in turn. The same values either way.
Var conv_relu_batchnorm(Tape* tape, const Var& x, const Var& w, const Var& b, const Var& gamma, const Var& beta,
                        BatchNormState& state, bool training, const BatchNormOptions& opt,
                        ConvInput input = ConvInput::AsIs, BlockOutput output = BlockOutput::AsIs);

// mean((y - target)^2) over every element; a one-element result.
Var mse_loss(Tape* tape, const Var& y, const Tensor& target);

}  // namespace mriae
