#include "kernels/cuda/reduce.h"

#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"

namespace mriae::cuda {

namespace {

__global__ void __launch_bounds__(kChannelThreads)
    channel_partial_kernel(const float* x, double* partial, int n, int channels, int64_t hw) {
  __shared__ ChannelReduce::TempStorage tmp;
  const double s = channel_partial_sum(tmp, n, channels, hw, [&](int64_t o) { return double(x[o]); });
  if (threadIdx.x == 0) partial[int64_t(blockIdx.x) * gridDim.y + blockIdx.y] = s;
}

__global__ void channel_finish_kernel(const double* partial, float* out, int channels, int splits) {
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < channels; c += int64_t(blockDim.x) * gridDim.x)
    out[c] += float(channel_total(partial, int(c), splits));
}

}  // namespace

size_t channel_sum_scratch_bytes(const NchwDims& d) { return sizeof(double) * size_t(d.c) * channel_splits(d); }

void channel_sum_accumulate(const float* x, float* out, const NchwDims& d, void* scratch, cudaStream_t stream) {
  if (d.c <= 0) return;
  auto* partial = static_cast<double*>(scratch);
  channel_partial_kernel<<<channel_split_grid(d), kChannelThreads, 0, stream>>>(x, partial, d.n, d.c, d.plane());
  MRIAE_CUDA_CHECK_LAUNCH(channel_partial_kernel);
  channel_finish_kernel<<<grid_for(d.c), kThreads, 0, stream>>>(partial, out, d.c, channel_splits(d));
  MRIAE_CUDA_CHECK_LAUNCH(channel_finish_kernel);
}

}  // namespace mriae::cuda
