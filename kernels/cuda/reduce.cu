#include "kernels/cuda/reduce.h"

#include "kernels/cuda/check.h"
#include "kernels/cuda/reduce.cuh"

namespace mriae::cuda {

namespace {

__global__ void __launch_bounds__(kChannelThreads)
    channel_sum_accumulate_kernel(const float* x, float* out, int n, int channels, int64_t hw) {
  __shared__ ChannelReduce::TempStorage tmp;
  const int c = blockIdx.x;
  const double s = channel_sum(tmp, n, channels, c, hw, [&](int64_t o) { return double(x[o]); });
  if (threadIdx.x == 0) out[c] += float(s);
}

}  // namespace

void channel_sum_accumulate(const float* x, float* out, const cpu::Dims& d, cudaStream_t stream) {
  if (d.c <= 0) return;
  channel_sum_accumulate_kernel<<<d.c, kChannelThreads, 0, stream>>>(x, out, d.n, d.c, d.plane());
  MRIAE_CUDA_CHECK_LAUNCH(channel_sum_accumulate_kernel);
}

}  // namespace mriae::cuda
