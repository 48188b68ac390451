#include "kernels/cuda/elementwise.h"

#include "kernels/common/op_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/grad_store.cuh"
#include "kernels/cuda/launch.h"

namespace mriae::cuda {

namespace {

__global__ void fill_kernel(float* x, float value, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    x[i] = value;
}

__global__ void relu_forward_kernel(const float* x, float* y, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    y[i] = hd::relu(x[i]);
}

__global__ void relu_backward_kernel(const float* x, const float* dy, float* dx, int64_t n, bool accumulate) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    const float g = hd::relu_grad(x[i], dy[i]);
    store_grad(dx[i], g, accumulate);
  }
}

__global__ void sigmoid_forward_kernel(const float* x, float* y, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    y[i] = hd::sigmoid(x[i]);
}

__global__ void sigmoid_backward_kernel(const float* y, const float* dy, float* dx, int64_t n, bool accumulate) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    const float g = hd::sigmoid_grad(y[i], dy[i]);
    store_grad(dx[i], g, accumulate);
  }
}

}  // namespace

void fill(float* x, float value, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  fill_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, value, n);
  MRIAE_CUDA_CHECK_LAUNCH(fill_kernel);
}

void relu_forward(const float* x, float* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  relu_forward_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, y, n);
  MRIAE_CUDA_CHECK_LAUNCH(relu_forward_kernel);
}

void relu_backward(const float* x, const float* dy, float* dx, int64_t n, cudaStream_t stream, bool accumulate) {
  if (n <= 0) return;
  relu_backward_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, dy, dx, n, accumulate);
  MRIAE_CUDA_CHECK_LAUNCH(relu_backward_kernel);
}

void sigmoid_forward(const float* x, float* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  sigmoid_forward_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, y, n);
  MRIAE_CUDA_CHECK_LAUNCH(sigmoid_forward_kernel);
}

void sigmoid_backward(const float* y, const float* dy, float* dx, int64_t n, cudaStream_t stream,
                      bool accumulate) {
  if (n <= 0) return;
  sigmoid_backward_kernel<<<grid_for(n), kThreads, 0, stream>>>(y, dy, dx, n, accumulate);
  MRIAE_CUDA_CHECK_LAUNCH(sigmoid_backward_kernel);
}

}  // namespace mriae::cuda
