#include "kernels/cuda/loss.h"

#include <cub/block/block_reduce.cuh>

#include "kernels/common/op_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/grad_store.cuh"
#include "kernels/cuda/launch.h"

namespace mriae::cuda {

namespace {

// Fixed, not derived from the GPU's SM count: the assignment of elements to partial sums, and so the
// rounding of the loss, depends on n alone.
constexpr int kMseThreads = 256;
constexpr int kMsePartials = 1024;
using MseReduce = cub::BlockReduce<double, kMseThreads>;

__global__ void __launch_bounds__(kMseThreads) mse_partial_kernel(const float* y, const float* t, int64_t n,
                                                                   double* partial) {
  __shared__ MseReduce::TempStorage tmp;
  double s = 0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    const double d = double(y[i] - t[i]);  // difference in float, as the CPU kernel computes it
    s += d * d;
  }
  const double b = MseReduce(tmp).Sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = b;
}

// One block: sums the `count` partials and divides by n.
__global__ void __launch_bounds__(kMseThreads) mse_finish_kernel(const double* partial, int count, int64_t n,
                                                                  float* loss) {
  __shared__ MseReduce::TempStorage tmp;
  double s = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) s += partial[i];
  const double total = MseReduce(tmp).Sum(s);
  if (threadIdx.x == 0) loss[0] = float(total / double(n));
}

__global__ void mse_backward_kernel(const float* y, const float* t, const float* dloss, float* dy, int64_t n,
                                    bool accumulate) {
  const float scale = dloss[0] * 2.0f / float(n);  // the CPU kernel's expression: (dloss * 2) / n
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    const float g = hd::mse_grad(y[i], t[i], scale);
    store_grad(dy[i], g, accumulate);
  }
}

}  // namespace

size_t mse_forward_scratch_bytes() { return sizeof(double) * kMsePartials; }

void mse_forward(const float* y, const float* t, int64_t n, float* loss, void* scratch, cudaStream_t stream) {
  auto* partial = static_cast<double*>(scratch);
  // With no elements only the finishing kernel runs, and writes 0/0 = NaN as the CPU kernel returns.
  const int blocks = n > 0 ? int(grid_for(n, kMseThreads, kMsePartials)) : 0;
  if (blocks > 0) {
    mse_partial_kernel<<<blocks, kMseThreads, 0, stream>>>(y, t, n, partial);
    MRIAE_CUDA_CHECK_LAUNCH(mse_partial_kernel);
  }
  mse_finish_kernel<<<1, kMseThreads, 0, stream>>>(partial, blocks, n, loss);
  MRIAE_CUDA_CHECK_LAUNCH(mse_finish_kernel);
}

void mse_backward(const float* y, const float* t, const float* dloss, float* dy, int64_t n, cudaStream_t stream,
                  bool accumulate) {
  if (n <= 0) return;
  mse_backward_kernel<<<grid_for(n), kThreads, 0, stream>>>(y, t, dloss, dy, n, accumulate);
  MRIAE_CUDA_CHECK_LAUNCH(mse_backward_kernel);
}

}  // namespace mriae::cuda
