#pragma once
// 3x3 'same' convolutions (pad 1, stride 1, fp32 NCHW, with bias) through cuDNN's legacy API, with the
// CPU kernel's contract (kernels/cpu/conv2d.h): backward ACCUMULATES into dx, dw and db, or with
// accumulate_dx = false overwrites dx. Every cuDNN call of the project is in conv_cudnn.cpp.
//
// Algorithms are chosen once per shape and cached by shape, so a new batch size gets its own choice:
// benchmarked with cudnnFind*, or in deterministic mode ranked by cuDNN's heuristics (no timing, so
// every process chooses alike). An algorithm that fails when run is replaced, once, by a deterministic one
// from the heuristics (said on stderr). The object is not thread-safe: one training thread drives it.
#include <cuda_runtime_api.h>

#include <array>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "kernels/common/nchw_dims.h"

// cuDNN's handle type is `cudnnContext*` (cudnnHandle_t); declared here so users need not include cudnn.h.
struct cudnnContext;

namespace mriae::cuda {

// A cuDNN handle whose work goes to `stream`. Throws cuda::Error when cuDNN cannot start (no GPU, or a
// runtime whose major version differs from the headers').
cudnnContext* cudnn_create(cudaStream_t stream);
// Never throws (it runs in destructors); a failure is reported on stderr.
void cudnn_destroy(cudnnContext* handle) noexcept;
// The runtime's version and the one built against, e.g. "9.19.0 (built with 9.19.0)".
std::string cudnn_version();

struct ConvOptions {
  // Only algorithms that cuDNN marks CUDNN_DETERMINISTIC, chosen by heuristics rather than timing; the
  // bias gradient by our own fixed-order reduction instead of cudnnConvolutionBackwardBias, whose
  // determinism cuDNN does not document.
  bool deterministic = false;
  // Allow TF32 tensor cores. Off (the default): strict FP32, CUDNN_FMA_MATH.
  bool tf32 = false;
  // Algorithms that need a larger workspace are passed over.
  size_t max_workspace_bytes = size_t(1) << 30;
};

// Device memory for cuDNN's workspace: at least `bytes`, valid until the next call. It is used only on
// the handle's stream, so the provider may hand out one buffer and replace it by a larger one.
using WorkspaceFn = std::function<void*(size_t bytes)>;

class Conv3x3 {
 public:
  Conv3x3(cudnnContext* handle, WorkspaceFn workspace, const ConvOptions& options = {});
  ~Conv3x3();
  Conv3x3(const Conv3x3&) = delete;
  Conv3x3& operator=(const Conv3x3&) = delete;

  // y = conv(x, w) + b. x [N,C,H,W], w [K,C,3,3], b [K] (may be null), y [N,K,H,W].
  void forward(const float* x, const float* w, const float* b, float* y, const NchwDims& xd, int k);
  // Accumulates dx, dw and db (each may be null) from dy [N,K,H,W]; with accumulate_dx = false, dx is
  // overwritten (never read: it may hold anything, NaN included) while dw and db still accumulate.
  void backward(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                const NchwDims& xd, int k, bool accumulate_dx = true);

  // Drops the cached choices: they were made under the old options.
  void set_options(const ConvOptions& options);
  const ConvOptions& options() const { return options_; }
  size_t plan_count() const { return plans_.size(); }
  // The algorithms chosen for a shape, e.g. "fwd IMPLICIT_PRECOMP_GEMM (FMA, 0 B workspace), ...";
  // empty when the shape has not run yet.
  std::string describe(const NchwDims& xd, int k) const;

 private:
  struct Plan;
  using Key = std::array<int, 5>;
  Plan& plan(const NchwDims& xd, int k);
  void choose_backward_data(Plan& p);
  void choose_backward_filter(Plan& p);
  // After the chosen algorithm failed to run with `status`: a deterministic replacement, said on stderr.
  void fall_back_forward(Plan& p, int status);
  void fall_back_backward_data(Plan& p, int status);
  void fall_back_backward_filter(Plan& p, int status);
  void* workspace(size_t bytes);

  cudnnContext* handle_;
  WorkspaceFn workspace_;
  ConvOptions options_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace mriae::cuda
