#include "kernels/cuda/conv_cudnn.h"

#include <cudnn.h>

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <vector>

#include "kernels/cuda/check.h"
#include "kernels/cuda/reduce.h"

namespace mriae::cuda {

namespace {

void report(cudnnStatus_t s, const char* call) noexcept {
  if (s != CUDNN_STATUS_SUCCESS) std::fprintf(stderr, "mriae: %s failed: %s\n", call, cudnnGetErrorString(s));
}

const char* math_name(cudnnMathType_t m) {
  switch (m) {
    case CUDNN_DEFAULT_MATH: return "DEFAULT";
    case CUDNN_TENSOR_OP_MATH: return "TENSOR_OP";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "TENSOR_OP_ALLOW_CONVERSION";
    case CUDNN_FMA_MATH: return "FMA";
  }
  return "?";
}

const char* algo_name(cudnnConvolutionFwdAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return "IMPLICIT_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: return "IMPLICIT_PRECOMP_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: return "GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: return "DIRECT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT: return "FFT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING: return "FFT_TILING";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD: return "WINOGRAD";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
    default: return "?";
  }
}

const char* algo_name(cudnnConvolutionBwdDataAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_0: return "ALGO_0";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_1: return "ALGO_1";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT: return "FFT";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING: return "FFT_TILING";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD: return "WINOGRAD";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
    default: return "?";
  }
}

const char* algo_name(cudnnConvolutionBwdFilterAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0: return "ALGO_0";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1: return "ALGO_1";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT: return "FFT";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3: return "ALGO_3";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD: return "WINOGRAD";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING: return "FFT_TILING";
    default: return "?";
  }
}

std::string shape_text(const NchwDims& xd, int k) {
  std::ostringstream o;
  o << "x [" << xd.n << ", " << xd.c << ", " << xd.h << ", " << xd.w << "] -> " << k << " channels";
  return o.str();
}

// The math type a search starts from. TF32: CUDNN_DEFAULT_MATH, which permits TF32 on Ampere and later;
// strict: CUDNN_FMA_MATH, which rules out every tensor-core kernel.
cudnnMathType_t search_math(const ConvOptions& o) { return o.tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH; }

// Find may report a math type other than the descriptor's (a TF32 kernel found under DEFAULT reports
// TENSOR_OP), and the algorithm must then run under that type. Strict mode stays on FMA throughout.
cudnnMathType_t run_math(const ConvOptions& o, cudnnMathType_t found) { return o.tf32 ? found : CUDNN_FMA_MATH; }

template <typename Perf> bool acceptable(const Perf& p, const ConvOptions& o) {
  if (p.status != CUDNN_STATUS_SUCCESS) return false;
  if (o.deterministic && p.determinism != CUDNN_DETERMINISTIC) return false;
  // ALLOW_CONVERSION may compute fp32 data in fp16; TENSOR_OP on fp32 data means TF32.
  if (p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return false;
  if (!o.tf32 && p.mathType == CUDNN_TENSOR_OP_MATH) return false;
  return p.memory <= o.max_workspace_bytes;
}

// The first acceptable result (Find lists the fastest first, the heuristics their best guess first), or
// an error listing what cuDNN offered.
template <typename Perf>
const Perf& pick(const std::vector<Perf>& found, int returned, const ConvOptions& o, const char* what,
                 const NchwDims& xd, int k) {
  for (int i = 0; i < returned; ++i)
    if (acceptable(found[i], o)) return found[i];
  std::ostringstream msg;
  msg << "cuDNN offers no usable " << what << " algorithm for " << shape_text(xd, k)
      << (o.deterministic ? " (deterministic" : " (non-deterministic allowed") << ", "
      << (o.tf32 ? "TF32" : "strict FP32") << ", workspace <= " << (o.max_workspace_bytes >> 20)
      << " MiB); cuDNN returned:";
  for (int i = 0; i < returned; ++i)
    msg << " [" << algo_name(found[i].algo) << ": " << cudnnGetErrorString(found[i].status) << ", "
        << math_name(found[i].mathType) << ", " << (found[i].determinism == CUDNN_DETERMINISTIC ? "" : "non-")
        << "deterministic, " << found[i].memory << " B]";
  if (returned == 0) msg << " nothing";
  throw Error(msg.str());
}

// A replacement for an algorithm that failed when run: the first of cuDNN's heuristic ranking that is
// deterministic, acceptable under the options and not the one that failed. Heuristics time nothing, so
// the fallback is the same in every process. Throws when there is none.
template <typename Perf, typename Algo>
const Perf& pick_fallback(const std::vector<Perf>& found, int returned, const ConvOptions& o, Algo failed,
                          const char* what, const NchwDims& xd, int k) {
  ConvOptions det = o;
  det.deterministic = true;
  for (int i = 0; i < returned; ++i)
    if (found[i].algo != failed && acceptable(found[i], det)) return found[i];
  throw Error(std::string("cuDNN's ") + what + " algorithm " + algo_name(failed) + " failed for " +
              shape_text(xd, k) + " and no other deterministic algorithm is offered");
}

// The status of a convolution that ran, or ran again with a fallback algorithm, naming the call.
#define MRIAE_CUDNN_CHECK_RUN(status, call) \
  ::mriae::cuda::check_status((status), CUDNN_STATUS_SUCCESS, cudnnGetErrorString, "cuDNN", call, __FILE__, __LINE__)

// Said once per shape and direction: the plan keeps the fallback, so the failure does not recur.
void say_fallback(const char* what, const char* failed, cudnnStatus_t status, const char* chosen,
                  const NchwDims& xd, int k) {
  std::fprintf(stderr, "mriae: cuDNN %s algorithm %s failed for %s (%s); falling back to deterministic %s\n", what,
               failed, shape_text(xd, k).c_str(), cudnnGetErrorString(status), chosen);
}

}  // namespace

cudnnContext* cudnn_create(cudaStream_t stream) {
  const size_t runtime = cudnnGetVersion();
  if (runtime / 10000 != CUDNN_MAJOR)
    throw Error("cuDNN runtime " + cudnn_version() + ": its major version differs from the headers'");
  // Within a major version cuDNN is backward compatible only: an older minor may lack an algorithm or fix
  // the build relies on. It still runs, so a warning (once per handle, i.e. once per process) not an error.
  if ((runtime % 10000) / 100 < size_t(CUDNN_MINOR))
    std::fprintf(stderr, "mriae: warning: cuDNN runtime %s is older than the headers it was built with\n",
                 cudnn_version().c_str());
  cudnnHandle_t h = nullptr;
  MRIAE_CUDNN_CHECK(cudnnCreate(&h));
  try {
    MRIAE_CUDNN_CHECK(cudnnSetStream(h, stream));
  } catch (...) {
    cudnn_destroy(h);
    throw;
  }
  return h;
}

void cudnn_destroy(cudnnContext* handle) noexcept {
  if (handle) report(cudnnDestroy(handle), "cudnnDestroy");
}

std::string cudnn_version() {
  const size_t v = cudnnGetVersion();
  std::ostringstream o;
  o << v / 10000 << '.' << (v % 10000) / 100 << '.' << v % 100 << " (built with " << CUDNN_MAJOR << '.'
    << CUDNN_MINOR << '.' << CUDNN_PATCHLEVEL << ')';
  return o.str();
}

struct Conv3x3::Plan {
  NchwDims xd;
  int k = 0;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  // One descriptor per direction: each runs under the math type its algorithm was found with.
  cudnnConvolutionDescriptor_t fwd = nullptr, bwd_data = nullptr, bwd_filter = nullptr;
  cudnnConvolutionFwdAlgo_t fwd_algo{};
  cudnnConvolutionBwdDataAlgo_t bwd_data_algo{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter_algo{};
  size_t fwd_ws = 0, bwd_data_ws = 0, bwd_filter_ws = 0;
  // Backward algorithms are chosen when first needed: inference never pays for them, and the first
  // layer (whose input needs no gradient) never searches backward-data.
  bool bwd_data_ready = false, bwd_filter_ready = false;

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (x) report(cudnnDestroyTensorDescriptor(x), "cudnnDestroyTensorDescriptor");
    if (y) report(cudnnDestroyTensorDescriptor(y), "cudnnDestroyTensorDescriptor");
    if (bias) report(cudnnDestroyTensorDescriptor(bias), "cudnnDestroyTensorDescriptor");
    if (w) report(cudnnDestroyFilterDescriptor(w), "cudnnDestroyFilterDescriptor");
    for (cudnnConvolutionDescriptor_t d : {fwd, bwd_data, bwd_filter})
      if (d) report(cudnnDestroyConvolutionDescriptor(d), "cudnnDestroyConvolutionDescriptor");
  }
};

namespace {

void make_conv_descriptor(cudnnConvolutionDescriptor_t* d, cudnnMathType_t math) {
  MRIAE_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(d));
  // pad 1, stride 1, dilation 1; cross-correlation is what the CPU kernel (and every framework) computes.
  MRIAE_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(*d, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  MRIAE_CUDNN_CHECK(cudnnSetConvolutionMathType(*d, math));
}

}  // namespace

Conv3x3::Conv3x3(cudnnContext* handle, WorkspaceFn workspace, const ConvOptions& options)
    : handle_(handle), workspace_(std::move(workspace)), options_(options) {
  if (!handle_) throw Error("Conv3x3: no cuDNN handle");
  if (!workspace_) throw Error("Conv3x3: no workspace provider");
}

Conv3x3::~Conv3x3() = default;

void Conv3x3::set_options(const ConvOptions& options) {
  options_ = options;
  plans_.clear();
}

void* Conv3x3::workspace(size_t bytes) { return bytes ? workspace_(bytes) : nullptr; }

Conv3x3::Plan& Conv3x3::plan(const NchwDims& xd, int k) {
  const Key key{xd.n, xd.c, xd.h, xd.w, k};
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;
  if (xd.n <= 0 || xd.c <= 0 || xd.h <= 0 || xd.w <= 0 || k <= 0)
    throw Error("Conv3x3: empty shape " + shape_text(xd, k));

  auto p = std::make_unique<Plan>();  // its destructor frees whatever was created if a step below throws
  p->xd = xd;
  p->k = k;
  MRIAE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
  MRIAE_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, xd.n, xd.c, xd.h, xd.w));
  MRIAE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
  MRIAE_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, xd.n, k, xd.h, xd.w));
  MRIAE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->bias));
  MRIAE_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, k, 1, 1));
  MRIAE_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
  MRIAE_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, k, xd.c, 3, 3));
  const cudnnMathType_t math = search_math(options_);
  make_conv_descriptor(&p->fwd, math);
  make_conv_descriptor(&p->bwd_data, math);
  make_conv_descriptor(&p->bwd_filter, math);

  // 'same' padding keeps H and W; check that cuDNN agrees before trusting the buffer sizes.
  int on = 0, oc = 0, oh = 0, ow = 0;
  MRIAE_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->fwd, p->x, p->w, &on, &oc, &oh, &ow));
  if (on != xd.n || oc != k || oh != xd.h || ow != xd.w)
    throw Error("Conv3x3: cuDNN computes an output of [" + std::to_string(on) + ", " + std::to_string(oc) + ", " +
                std::to_string(oh) + ", " + std::to_string(ow) + "] for " + shape_text(xd, k));

  int max_algos = 0;
  MRIAE_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(handle_, &max_algos));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> found(size_t(std::max(max_algos, 1)));
  int returned = 0;
  // The non-Ex Find benchmarks on buffers it allocates itself, so it cannot clobber an output that
  // backward accumulates into. It runs once per shape, in the first step. Deterministic mode ranks by
  // cuDNN's heuristics instead, which time nothing: every process then makes the same choice, and so
  // computes the same bits (timing noise could otherwise pick another deterministic algorithm).
  if (options_.deterministic)
    MRIAE_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle_, p->x, p->w, p->fwd, p->y, int(found.size()),
                                                             &returned, found.data()));
  else
    MRIAE_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(handle_, p->x, p->w, p->fwd, p->y, int(found.size()),
                                                           &returned, found.data()));
  const auto& best = pick(found, returned, options_, "forward", xd, k);
  p->fwd_algo = best.algo;
  MRIAE_CUDNN_CHECK(cudnnSetConvolutionMathType(p->fwd, run_math(options_, best.mathType)));
  MRIAE_CUDNN_CHECK(
      cudnnGetConvolutionForwardWorkspaceSize(handle_, p->x, p->w, p->fwd, p->y, p->fwd_algo, &p->fwd_ws));
  p->fwd_ws = std::max(p->fwd_ws, best.memory);

  Plan& ref = *p;
  plans_.emplace(key, std::move(p));
  return ref;
}

void Conv3x3::choose_backward_data(Plan& p) {
  if (p.bwd_data_ready) return;
  int max_algos = 0;
  MRIAE_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle_, &max_algos));
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> found(size_t(std::max(max_algos, 1)));
  int returned = 0;
  if (options_.deterministic)
    MRIAE_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle_, p.w, p.y, p.bwd_data, p.x,
                                                                  int(found.size()), &returned, found.data()));
  else
    MRIAE_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(handle_, p.w, p.y, p.bwd_data, p.x,
                                                                int(found.size()), &returned, found.data()));
  const auto& best = pick(found, returned, options_, "backward-data", p.xd, p.k);
  p.bwd_data_algo = best.algo;
  MRIAE_CUDNN_CHECK(cudnnSetConvolutionMathType(p.bwd_data, run_math(options_, best.mathType)));
  MRIAE_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(handle_, p.w, p.y, p.bwd_data, p.x,
                                                                 p.bwd_data_algo, &p.bwd_data_ws));
  p.bwd_data_ws = std::max(p.bwd_data_ws, best.memory);
  p.bwd_data_ready = true;
}

void Conv3x3::choose_backward_filter(Plan& p) {
  if (p.bwd_filter_ready) return;
  int max_algos = 0;
  MRIAE_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(handle_, &max_algos));
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> found(size_t(std::max(max_algos, 1)));
  int returned = 0;
  if (options_.deterministic)
    MRIAE_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle_, p.x, p.y, p.bwd_filter, p.w,
                                                                    int(found.size()), &returned, found.data()));
  else
    MRIAE_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(handle_, p.x, p.y, p.bwd_filter, p.w,
                                                                  int(found.size()), &returned, found.data()));
  const auto& best = pick(found, returned, options_, "backward-filter", p.xd, p.k);
  p.bwd_filter_algo = best.algo;
  MRIAE_CUDNN_CHECK(cudnnSetConvolutionMathType(p.bwd_filter, run_math(options_, best.mathType)));
  MRIAE_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle_, p.x, p.y, p.bwd_filter, p.w,
                                                                   p.bwd_filter_algo, &p.bwd_filter_ws));
  p.bwd_filter_ws = std::max(p.bwd_filter_ws, best.memory);
  p.bwd_filter_ready = true;
}

// An algorithm that cuDNN chose may still refuse to run (an engine not supported on this GPU or driver, a
// workspace it under-reported, ...). A refused call returns its status before it writes anything, so it is
// safe to run the same call again, also where it accumulates (beta = 1), with a fallback algorithm.
void Conv3x3::fall_back_forward(Plan& p, int status) {
  int max_algos = 0;
  MRIAE_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(handle_, &max_algos));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> found(size_t(std::max(max_algos, 1)));
  int returned = 0;
  MRIAE_CUDNN_CHECK(cudnnSetConvolutionMathType(p.fwd, search_math(options_)));
  MRIAE_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle_, p.x, p.w, p.fwd, p.y, int(found.size()),
                                                           &returned, found.data()));
  const auto& next = pick_fallback(found, returned, options_, p.fwd_algo, "forward", p.xd, p.k);
  say_fallback("forward", algo_name(p.fwd_algo), cudnnStatus_t(status), algo_name(next.algo), p.xd, p.k);
  p.fwd_algo = next.algo;
  MRIAE_CUDNN_CHECK(cudnnSetConvolutionMathType(p.fwd, run_math(options_, next.mathType)));
  MRIAE_CUDNN_CHECK(
      cudnnGetConvolutionForwardWorkspaceSize(handle_, p.x, p.w, p.fwd, p.y, p.fwd_algo, &p.fwd_ws));
  p.fwd_ws = std::max(p.fwd_ws, next.memory);
}

void Conv3x3::fall_back_backward_data(Plan& p, int status) {
  int max_algos = 0;
  MRIAE_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle_, &max_algos));
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> found(size_t(std::max(max_algos, 1)));
  int returned = 0;
  MRIAE_CUDNN_CHECK(cudnnSetConvolutionMathType(p.bwd_data, search_math(options_)));
  MRIAE_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle_, p.w, p.y, p.bwd_data, p.x,
                                                                int(found.size()), &returned, found.data()));
  const auto& next = pick_fallback(found, returned, options_, p.bwd_data_algo, "backward-data", p.xd, p.k);
  say_fallback("backward-data", algo_name(p.bwd_data_algo), cudnnStatus_t(status), algo_name(next.algo), p.xd,
               p.k);
  p.bwd_data_algo = next.algo;
  MRIAE_CUDNN_CHECK(cudnnSetConvolutionMathType(p.bwd_data, run_math(options_, next.mathType)));
  MRIAE_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(handle_, p.w, p.y, p.bwd_data, p.x,
                                                                 p.bwd_data_algo, &p.bwd_data_ws));
  p.bwd_data_ws = std::max(p.bwd_data_ws, next.memory);
}

void Conv3x3::fall_back_backward_filter(Plan& p, int status) {
  int max_algos = 0;
  MRIAE_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(handle_, &max_algos));
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> found(size_t(std::max(max_algos, 1)));
  int returned = 0;
  MRIAE_CUDNN_CHECK(cudnnSetConvolutionMathType(p.bwd_filter, search_math(options_)));
  MRIAE_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle_, p.x, p.y, p.bwd_filter, p.w,
                                                                  int(found.size()), &returned, found.data()));
  const auto& next = pick_fallback(found, returned, options_, p.bwd_filter_algo, "backward-filter", p.xd, p.k);
  say_fallback("backward-filter", algo_name(p.bwd_filter_algo), cudnnStatus_t(status), algo_name(next.algo), p.xd,
               p.k);
  p.bwd_filter_algo = next.algo;
  MRIAE_CUDNN_CHECK(cudnnSetConvolutionMathType(p.bwd_filter, run_math(options_, next.mathType)));
  MRIAE_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle_, p.x, p.y, p.bwd_filter, p.w,
                                                                   p.bwd_filter_algo, &p.bwd_filter_ws));
  p.bwd_filter_ws = std::max(p.bwd_filter_ws, next.memory);
}

void Conv3x3::forward(const float* x, const float* w, const float* b, float* y, const NchwDims& xd, int k) {
  Plan& p = plan(xd, k);
  const float one = 1.0f, zero = 0.0f;
  // beta = 0: y is written, never read (it may hold stale cached memory).
  auto run = [&] {
    return cudnnConvolutionForward(handle_, &one, p.x, x, p.w, w, p.fwd, p.fwd_algo, workspace(p.fwd_ws), p.fwd_ws,
                                   &zero, p.y, y);
  };
  cudnnStatus_t s = run();
  if (s != CUDNN_STATUS_SUCCESS) {
    fall_back_forward(p, int(s));
    s = run();
  }
  MRIAE_CUDNN_CHECK_RUN(s, "cudnnConvolutionForward");
  if (b) MRIAE_CUDNN_CHECK(cudnnAddTensor(handle_, &one, p.bias, b, &one, p.y, y));
}

void Conv3x3::backward(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                       const NchwDims& xd, int k, bool accumulate_dx) {
  Plan& p = plan(xd, k);
  if (dx) choose_backward_data(p);
  if (dw) choose_backward_filter(p);
  // beta = 1: the gradients accumulate, as on the CPU. For dx, beta = 0 when overwriting: cuDNN then does not
  // read dx at all, so a fresh, unfilled gradient buffer needs no zero fill.
  const float one = 1.0f, zero = 0.0f;
  if (db) {
    if (options_.deterministic) {
      cudaStream_t stream = nullptr;
      MRIAE_CUDNN_CHECK(cudnnGetStream(handle_, &stream));
      const NchwDims yd{xd.n, k, xd.h, xd.w};
      channel_sum_accumulate(dy, db, yd, workspace(channel_sum_scratch_bytes(yd)), stream);
    } else {
      MRIAE_CUDNN_CHECK(cudnnConvolutionBackwardBias(handle_, &one, p.y, dy, &one, p.bias, db));
    }
  }
  if (dw) {
    auto run = [&] {
      return cudnnConvolutionBackwardFilter(handle_, &one, p.x, x, p.y, dy, p.bwd_filter, p.bwd_filter_algo,
                                            workspace(p.bwd_filter_ws), p.bwd_filter_ws, &one, p.w, dw);
    };
    cudnnStatus_t s = run();
    if (s != CUDNN_STATUS_SUCCESS) {
      fall_back_backward_filter(p, int(s));
      s = run();
    }
    MRIAE_CUDNN_CHECK_RUN(s, "cudnnConvolutionBackwardFilter");
  }
  if (dx) {
    auto run = [&] {
      return cudnnConvolutionBackwardData(handle_, &one, p.w, w, p.y, dy, p.bwd_data, p.bwd_data_algo,
                                          workspace(p.bwd_data_ws), p.bwd_data_ws, accumulate_dx ? &one : &zero,
                                          p.x, dx);
    };
    cudnnStatus_t s = run();
    if (s != CUDNN_STATUS_SUCCESS) {
      fall_back_backward_data(p, int(s));
      s = run();
    }
    MRIAE_CUDNN_CHECK_RUN(s, "cudnnConvolutionBackwardData");
  }
}

std::string Conv3x3::describe(const NchwDims& xd, int k) const {
  auto it = plans_.find(Key{xd.n, xd.c, xd.h, xd.w, k});
  if (it == plans_.end()) return "";
  const Plan& p = *it->second;
  auto math_of = [](cudnnConvolutionDescriptor_t d) {
    cudnnMathType_t m = CUDNN_DEFAULT_MATH;
    MRIAE_CUDNN_CHECK(cudnnGetConvolutionMathType(d, &m));
    return math_name(m);
  };
  std::ostringstream o;
  o << "fwd " << algo_name(p.fwd_algo) << " (" << math_of(p.fwd) << ", " << p.fwd_ws << " B workspace)";
  if (p.bwd_data_ready)
    o << ", bwd-data " << algo_name(p.bwd_data_algo) << " (" << math_of(p.bwd_data) << ", " << p.bwd_data_ws << " B)";
  if (p.bwd_filter_ready)
    o << ", bwd-filter " << algo_name(p.bwd_filter_algo) << " (" << math_of(p.bwd_filter) << ", " << p.bwd_filter_ws
      << " B)";
  return o.str();
}

}  // namespace mriae::cuda
