// Times each CUDA kernel at the model's shapes (batch 32 by default, 176x176 input), forward and
// backward, with CUDA events on the compute stream. Prints a markdown table.
//
//   bench_cuda_ops [batch] [iterations]
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <string>

#include "engine/cuda_context.h"
#include "engine/tensor.h"
#include "kernels/cuda/batchnorm.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/loss.h"
#include "kernels/cuda/optim.h"
#include "kernels/cuda/pooling.h"
#include "model/autoencoder.h"

namespace {

using namespace mriae;
using cpu::Dims;

// Mean milliseconds per call of f over `iters` calls, after two warm-up calls (the first also chooses cuDNN
// algorithms).
struct Timer {
  int iters = 20;
  double ms(const std::function<void()>& f) const;
};

double Timer::ms(const std::function<void()>& f) const {
  CudaContext& ctx = Context::get().cuda();
  f();
  f();
  cudaEvent_t start = nullptr, stop = nullptr;
  MRIAE_CUDA_CHECK(cudaEventCreate(&start));
  MRIAE_CUDA_CHECK(cudaEventCreate(&stop));
  MRIAE_CUDA_CHECK(cudaEventRecord(start, ctx.compute_stream()));
  for (int i = 0; i < iters; ++i) f();
  MRIAE_CUDA_CHECK(cudaEventRecord(stop, ctx.compute_stream()));
  MRIAE_CUDA_CHECK(cudaEventSynchronize(stop));
  float elapsed = 0;
  MRIAE_CUDA_CHECK(cudaEventElapsedTime(&elapsed, start, stop));
  MRIAE_CUDA_CHECK(cudaEventDestroy(start));
  MRIAE_CUDA_CHECK(cudaEventDestroy(stop));
  return double(elapsed) / iters;
}

std::string str(const Dims& d) {
  return std::to_string(d.n) + "x" + std::to_string(d.c) + "x" + std::to_string(d.h) + "x" + std::to_string(d.w);
}

void row(const std::string& op, const std::string& shape, double fwd, double bwd) {
  std::printf("| %s | %s | %.3f | %.3f |\n", op.c_str(), shape.c_str(), fwd, bwd);
}

Tensor dev(int64_t n, float v = 0.5f) { return Tensor::full({n}, v, Device::CUDA); }

}  // namespace

int main(int argc, char** argv) {
  if (!cuda_available()) {
    std::puts("no CUDA GPU: skipped");
    return 77;
  }
  const int batch = argc > 1 ? std::atoi(argv[1]) : 32;
  Timer timer;
  if (argc > 2) timer.iters = std::atoi(argv[2]);
  if (batch <= 0 || timer.iters <= 0) {
    std::fprintf(stderr, "usage: bench_cuda_ops [batch] [iterations]\n");
    return 2;
  }
  try {
    CudaContext& ctx = Context::get().cuda();
    const cudaStream_t s = ctx.compute_stream();
    std::printf("%s\n\nbatch %d, %d iterations, strict FP32\n\n", ctx.describe().c_str(), batch, timer.iters);
    std::printf("| op | input | forward ms | backward ms |\n|---|---|---|---|\n");

    int h = 176, c = 1;
    for (const LayerSpec& l : Autoencoder::layers()) {
      const Dims d{batch, c, h, h};
      const int64_t n = d.count();
      if (l.kind == LayerSpec::Conv) {
        const int k = l.channels;
        const int64_t ny = int64_t(batch) * k * h * h;
        Tensor x = dev(n), w = dev(int64_t(k) * c * 9, 0.01f), b = dev(k), y = dev(ny), dy = dev(ny), dx = dev(n),
               dw = dev(int64_t(k) * c * 9), db = dev(k);
        auto& conv = ctx.conv();
        const double f = timer.ms([&] { conv.forward(x.data(), w.data(), b.data(), y.data(), d, k); });
        // The first layer's input needs no gradient.
        float* dxp = l.index == 1 ? nullptr : dx.data();
        const double g =
            timer.ms([&] { conv.backward(x.data(), w.data(), dy.data(), dxp, dw.data(), db.data(), d, k); });
        row("conv" + std::to_string(l.index) + " -> " + std::to_string(k), str(d), f, g);
        const Dims yd{batch, k, h, h};
        const int64_t m = yd.count();
        Tensor r = dev(m), dr = dev(m);
        if (l.index == Autoencoder::kConvs) {
          row("sigmoid", str(yd), timer.ms([&] { cuda::sigmoid_forward(y.data(), r.data(), m, s); }),
              timer.ms([&] { cuda::sigmoid_backward(r.data(), dy.data(), dr.data(), m, s); }));
          Tensor loss = dev(1), scratch = dev(int64_t(cuda::mse_forward_scratch_bytes() / 4));
          row("mse", str(yd),
              timer.ms([&] { cuda::mse_forward(r.data(), y.data(), m, loss.data(), scratch.data(), s); }),
              timer.ms([&] { cuda::mse_backward(r.data(), y.data(), loss.data(), dr.data(), m, s); }));
        } else {
          row("relu", str(yd), timer.ms([&] { cuda::relu_forward(y.data(), r.data(), m, s); }),
              timer.ms([&] { cuda::relu_backward(y.data(), dy.data(), dr.data(), m, s); }));
        }
        c = k;
      } else if (l.kind == LayerSpec::BatchNorm) {
        Tensor x = dev(n), y = dev(n), dy = dev(n), dx = dev(n), g = dev(c, 1.0f), be = dev(c), mean = dev(c),
               invstd = dev(c), var = dev(c), dg = dev(c), dbe = dev(c),
               fscratch = dev(int64_t(cuda::batchnorm_forward_scratch_bytes(d) / 4)),
               scratch = dev(int64_t(cuda::batchnorm_backward_scratch_bytes(d) / 4));
        const double f = timer.ms([&] {
          cuda::batchnorm_forward_train(x.data(), g.data(), be.data(), y.data(), mean.data(), invstd.data(),
                                        var.data(), fscratch.data(), d, 1e-3f, s);
        });
        const double b = timer.ms([&] {
          cuda::batchnorm_backward_train(x.data(), dy.data(), g.data(), mean.data(), invstd.data(), dx.data(),
                                         dg.data(), dbe.data(), scratch.data(), d, s);
        });
        row("bn" + std::to_string(l.index), str(d), f, b);
      } else if (l.kind == LayerSpec::MaxPool) {
        const int64_t m = n / 4;
        Tensor x = dev(n), y = dev(m), dy = dev(m), dx = dev(n), idx = dev(m);
        auto* ip = reinterpret_cast<int32_t*>(idx.data());
        row("maxpool", str(d), timer.ms([&] { cuda::maxpool2_forward(x.data(), y.data(), ip, d, s); }),
            timer.ms([&] { cuda::maxpool2_backward(dy.data(), ip, dx.data(), d, s); }));
        h /= 2;
      } else {
        Tensor x = dev(n), y = dev(4 * n), dy = dev(4 * n), dx = dev(n);
        row("upsample", str(d), timer.ms([&] { cuda::upsample2_forward(x.data(), y.data(), d, s); }),
            timer.ms([&] { cuda::upsample2_backward(dy.data(), dx.data(), d, s); }));
        h *= 2;
      }
    }
    const int64_t np = Autoencoder::trainable_count();
    Tensor p = dev(np), acc = dev(np), g = dev(np, 0.01f);
    row("rmsprop", std::to_string(np) + " parameters",
        timer.ms([&] { cuda::rmsprop_update(p.data(), acc.data(), g.data(), np, 1e-3f, 0.9f, 1e-7f, s); }), 0.0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_ops: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
