// Every CUDA kernel, forward and backward, against its CPU twin (kernels/cpu), on fresh random inputs at
// small odd shapes and at the model's shapes (32 channels at 176x176, 64 at 88x88, 128 at 44x44) with odd
// batch sizes. Backward outputs start from random values: both backends must ACCUMULATE onto them. In overwrite
// mode (accumulate = false, what the engine uses for a fresh gradient buffer) they start from NaN sentinels
// instead, which every element written must replace: no NaN may remain.
//
// Limits. Pure data movement (ReLU, pooling, upsampling) must match exactly. Per-element arithmetic built
// without FMA contraction (-fmad=false) rounds as on the CPU, so RMSprop, the moving statistics and the
// MSE gradient get one-ulp limits. Reductions (batchnorm, MSE loss) accumulate in double in another order:
// nmse 1e-10, the fused ReLU-then-batchnorm kernels too, which must equal relu then batchnorm on the GPU
// exactly. Sigmoid: expf differs by an ulp or two. cuDNN convolutions: nmse 1e-8 in strict FP32 (Winograd and
// FFT algorithms round differently from a direct sum), 1e-5 with TF32 (10-bit mantissa).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "gpu_util.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/optim.h"
#include "kernels/cpu/pooling.h"
#include "kernels/cuda/batchnorm.h"
#include "kernels/cuda/conv_cudnn.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/loss.h"
#include "kernels/cuda/optim.h"
#include "kernels/cuda/pooling.h"

using namespace gpu_test;
using mriae::NchwDims;
namespace cpu = mriae::cpu;
namespace cuda = mriae::cuda;

namespace {

// Small odd shapes; the model's activations (32 channels at 176x176, 64 at 88x88, 128 at 44x44) with odd
// batch sizes; and a batch whose channel reductions split its 5 planes unevenly over 4 blocks.
const std::vector<NchwDims> kShapes = {{3, 5, 7, 9},     {1, 3, 2, 2},     {3, 32, 176, 176},
                                   {2, 64, 88, 88},  {3, 128, 44, 44}, {5, 4, 100, 100}};

std::string str(const NchwDims& d) {
  return "[" + std::to_string(d.n) + ", " + std::to_string(d.c) + ", " + std::to_string(d.h) + ", " +
         std::to_string(d.w) + "]";
}

uint64_t seed_for(const NchwDims& d, uint64_t salt) {
  return uint64_t(d.n) * 1000003u + uint64_t(d.c) * 10007u + uint64_t(d.h) * 101u + uint64_t(d.w) + salt * 7919u;
}

constexpr double kUlpRel = 2e-7;  // about one float ulp, relative to max(1, max |want|)

}  // namespace

// Tape::backward seeds the loss gradient with it, so it must write every element and nothing beside them.
TEST_CASE("fill writes its value to every element and nothing else") {
  for (int64_t n : {int64_t(1), int64_t(1000), int64_t(3) * 32 * 176 * 176}) {
    CAPTURE(n);
    Guarded g(sentinel_values(n));
    cuda::fill(g.data(), 1.0f, n, stream());
    check_close("fill", g.values(), std::vector<float>(size_t(n), 1.0f), 0, 0);
    CHECK_GUARDS(g);
  }
}

TEST_CASE("relu forward and backward match the CPU exactly") {
  for (const NchwDims& d : kShapes) {
    CAPTURE(str(d));
    const int64_t n = d.count();
    auto x = random_values(n, seed_for(d, 1));
    for (int64_t i = 0; i < n; i += 7) x[size_t(i)] = 0.0f;  // the gradient at exactly 0 is 0
    const auto dy = random_values(n, seed_for(d, 2)), dx0 = random_values(n, seed_for(d, 3));
    std::vector<float> y_ref(static_cast<size_t>(n)), dx_ref = dx0;
    cpu::relu_forward(x.data(), y_ref.data(), n);
    cpu::relu_backward(x.data(), dy.data(), dx_ref.data(), n);

    Guarded gx(x), gy = Guarded::sized(n), gdy(dy), gdx(dx0);
    cuda::relu_forward(gx.data(), gy.data(), n, stream());
    cuda::relu_backward(gx.data(), gdy.data(), gdx.data(), n, stream());
    check_close("relu forward", gy.values(), y_ref, 0, 0);
    check_close("relu backward", gdx.values(), dx_ref, 0, 0);
    CHECK_GUARDS(gx);
    CHECK_GUARDS(gy);
    CHECK_GUARDS(gdy);
    CHECK_GUARDS(gdx);

    std::vector<float> dxo_ref = sentinel_values(n);
    cpu::relu_backward(x.data(), dy.data(), dxo_ref.data(), n, false);
    Guarded gdxo(sentinel_values(n));
    cuda::relu_backward(gx.data(), gdy.data(), gdxo.data(), n, stream(), false);
    const auto dxo = gdxo.values();
    check_finite("relu backward, overwriting", dxo);
    check_close("relu backward, overwriting", dxo, dxo_ref, 0, 0);
    CHECK_GUARDS(gdxo);
  }
}

TEST_CASE("sigmoid forward and backward match the CPU") {
  for (const NchwDims& d : kShapes) {
    CAPTURE(str(d));
    const int64_t n = d.count();
    auto x = random_values(n, seed_for(d, 4), -8, 8);
    if (n > 2) x[0] = 100.0f, x[1] = -100.0f;  // saturation must give 1 and 0, not NaN
    const auto dy = random_values(n, seed_for(d, 5)), dx0 = random_values(n, seed_for(d, 6));
    std::vector<float> y_ref(static_cast<size_t>(n)), dx_ref = dx0;
    cpu::sigmoid_forward(x.data(), y_ref.data(), n);
    cpu::sigmoid_backward(y_ref.data(), dy.data(), dx_ref.data(), n);

    Guarded gx(x), gy = Guarded::sized(n), gdy(dy), gdx(dx0);
    cuda::sigmoid_forward(gx.data(), gy.data(), n, stream());
    cuda::sigmoid_backward(gy.data(), gdy.data(), gdx.data(), n, stream());
    const auto y = gy.values();
    check_finite("sigmoid forward", y);
    check_close("sigmoid forward", y, y_ref, 1e-12, 1e-6);
    // The GPU backward starts from its own forward output, as the op does.
    check_close("sigmoid backward", gdx.values(), dx_ref, 1e-12, 1e-6);
    CHECK_GUARDS(gy);
    CHECK_GUARDS(gdx);

    std::vector<float> dxo_ref = sentinel_values(n);
    cpu::sigmoid_backward(y_ref.data(), dy.data(), dxo_ref.data(), n, false);
    Guarded gdxo(sentinel_values(n));
    cuda::sigmoid_backward(gy.data(), gdy.data(), gdxo.data(), n, stream(), false);
    const auto dxo = gdxo.values();
    check_finite("sigmoid backward, overwriting", dxo);
    check_close("sigmoid backward, overwriting", dxo, dxo_ref, 1e-12, 1e-6);
    CHECK_GUARDS(gdxo);
  }
}

TEST_CASE("maxpool2 forward, argmax and backward match the CPU exactly, with ties and NaNs") {
  std::vector<NchwDims> shapes = kShapes;
  shapes.push_back({2, 3, 5, 4});  // odd trailing row dropped
  shapes.push_back({2, 3, 4, 7});  // odd trailing column dropped
  shapes.push_back({2, 35000, 2, 3});  // more planes than one grid's z holds: the kernels loop over planes
  for (const NchwDims& d : shapes) {
    CAPTURE(str(d));
    const int64_t n = d.count(), m = int64_t(d.n) * d.c * (d.h / 2) * (d.w / 2);
    auto x = random_values(n, seed_for(d, 7));
    // Three levels make ties in most windows (ReLU then batchnorm does the same to zeros); the first
    // maximum in row-major order must win, and a NaN must beat everything.
    for (float& v : x) v = float(int(v * 1.5f)) / 1.5f;
    for (int64_t i = 5; i < n; i += 97) x[size_t(i)] = NAN;
    const auto dy = random_values(m, seed_for(d, 8)), dx0 = random_values(n, seed_for(d, 9));
    std::vector<float> y_ref(static_cast<size_t>(m)), dx_ref = dx0;
    std::vector<int32_t> idx_ref(static_cast<size_t>(m));
    cpu::maxpool2_forward(x.data(), y_ref.data(), idx_ref.data(), d);
    cpu::maxpool2_backward(dy.data(), idx_ref.data(), dx_ref.data(), d);

    Guarded gx(x), gy = Guarded::sized(m), gidx = Guarded::sized(m), gdy(dy), gdx(dx0);
    cuda::maxpool2_forward(gx.data(), gy.data(), gidx.ints(), d, stream());
    cuda::maxpool2_backward(gdy.data(), gidx.ints(), gdx.data(), d, stream());
    check_close("maxpool forward", gy.values(), y_ref, 0, 0);
    CHECK(gidx.int_values() == idx_ref);
    check_close("maxpool backward", gdx.values(), dx_ref, 0, 0);
    CHECK_GUARDS(gy);
    CHECK_GUARDS(gidx);
    CHECK_GUARDS(gdx);

    // Overwriting gathers instead of scattering: it must write 0 to every element that is no window's argmax,
    // the dropped odd row and column included (their sentinels would remain otherwise).
    std::vector<float> dxo_ref = sentinel_values(n);
    cpu::maxpool2_backward(dy.data(), idx_ref.data(), dxo_ref.data(), d, false);
    Guarded gdxo(sentinel_values(n));
    cuda::maxpool2_backward(gdy.data(), gidx.ints(), gdxo.data(), d, stream(), false);
    const auto dxo = gdxo.values();
    check_finite("maxpool backward, overwriting", dxo);
    check_close("maxpool backward, overwriting", dxo, dxo_ref, 0, 0);
    CHECK_GUARDS(gdxo);
  }
}

TEST_CASE("upsample2 forward and backward match the CPU exactly") {
  std::vector<NchwDims> shapes = kShapes;
  shapes.push_back({1, 70000, 1, 3});  // more planes than one grid's z holds: the kernels loop over planes
  for (const NchwDims& d : shapes) {
    CAPTURE(str(d));
    const int64_t n = d.count(), m = 4 * n;
    const auto x = random_values(n, seed_for(d, 10)), dy = random_values(m, seed_for(d, 11)),
               dx0 = random_values(n, seed_for(d, 12));
    std::vector<float> y_ref(static_cast<size_t>(m)), dx_ref = dx0;
    cpu::upsample2_forward(x.data(), y_ref.data(), d);
    cpu::upsample2_backward(dy.data(), dx_ref.data(), d);

    Guarded gx(x), gy = Guarded::sized(m), gdy(dy), gdx(dx0);
    cuda::upsample2_forward(gx.data(), gy.data(), d, stream());
    cuda::upsample2_backward(gdy.data(), gdx.data(), d, stream());
    check_close("upsample forward", gy.values(), y_ref, 0, 0);
    check_close("upsample backward", gdx.values(), dx_ref, 0, 0);
    CHECK_GUARDS(gy);
    CHECK_GUARDS(gdx);

    std::vector<float> dxo_ref = sentinel_values(n);
    cpu::upsample2_backward(dy.data(), dxo_ref.data(), d, false);
    Guarded gdxo(sentinel_values(n));
    cuda::upsample2_backward(gdy.data(), gdxo.data(), d, stream(), false);
    const auto dxo = gdxo.values();
    check_finite("upsample backward, overwriting", dxo);
    check_close("upsample backward, overwriting", dxo, dxo_ref, 0, 0);
    CHECK_GUARDS(gdxo);
  }
}

namespace {

// kReluInput: the fused ReLU-then-batchnorm kernels, against the CPU's fused twins and against the GPU's own
// relu followed by the unfused kernels.
template <bool kReluInput> void check_batchnorm() {
  const float eps = 1e-3f;
  for (const NchwDims& d : kShapes) {
    CAPTURE(str(d));
    const int64_t n = d.count(), hw = d.plane();
    // An offset mean tests the two-pass variance; channel 0 is constant (zero variance). The fused variant
    // gets negative values and exact zeros (where the ReLU's gradient is 0), and a channel 0 the ReLU zeroes.
    auto x = random_values(n, seed_for(d, 13), kReluInput ? -1.0 : 0.5, 2.5);
    if (kReluInput)
      for (int64_t i = 0; i < n; i += 7) x[size_t(i)] = 0.0f;
    const float constant = kReluInput ? -0.25f : 0.25f;
    if (d.c > 1)
      for (int i = 0; i < d.n; ++i) std::fill_n(x.begin() + (int64_t(i) * d.c) * hw, hw, constant);
    const auto gamma = random_values(d.c, seed_for(d, 14), 0.5, 1.5), beta = random_values(d.c, seed_for(d, 15));
    const auto dy = random_values(n, seed_for(d, 16)), dx0 = random_values(n, seed_for(d, 17));
    const auto dgamma0 = random_values(d.c, seed_for(d, 18)), dbeta0 = random_values(d.c, seed_for(d, 19));

    const auto c = static_cast<size_t>(d.c);
    std::vector<float> y_ref(static_cast<size_t>(n)), mean_ref(c), invstd_ref(c), var_ref(c);
    cpu::batchnorm_forward_train<float, kReluInput>(x.data(), gamma.data(), beta.data(), y_ref.data(),
                                                    mean_ref.data(), invstd_ref.data(), var_ref.data(), d, eps);
    std::vector<float> dx_ref = dx0, dgamma_ref = dgamma0, dbeta_ref = dbeta0;
    cpu::batchnorm_backward_train<float, kReluInput>(x.data(), dy.data(), gamma.data(), mean_ref.data(),
                                                     invstd_ref.data(), dx_ref.data(), dgamma_ref.data(),
                                                     dbeta_ref.data(), d);
    std::vector<float> ye_ref(static_cast<size_t>(n));
    cpu::batchnorm_forward_eval<float, kReluInput>(x.data(), gamma.data(), beta.data(), mean_ref.data(),
                                                   var_ref.data(), ye_ref.data(), d, eps);

    Guarded gx(x), ggamma(gamma), gbeta(beta), gy = Guarded::sized(n), gmean = Guarded::sized(d.c),
        ginvstd = Guarded::sized(d.c), gvar = Guarded::sized(d.c),
        fscratch = Guarded::sized(int64_t(cuda::batchnorm_forward_scratch_bytes(d) / sizeof(float)));
    cuda::batchnorm_forward_train<kReluInput>(gx.data(), ggamma.data(), gbeta.data(), gy.data(), gmean.data(),
                                              ginvstd.data(), gvar.data(), fscratch.data(), d, eps, stream());
    const auto y = gy.values();
    check_finite("batchnorm forward", y);
    check_close("batchnorm mean", gmean.values(), mean_ref, 1e-12, kUlpRel);
    check_close("batchnorm variance", gvar.values(), var_ref, 1e-12, kUlpRel);
    check_close("batchnorm invstd", ginvstd.values(), invstd_ref, 1e-12, 1e-6);
    check_close("batchnorm forward", y, y_ref, 1e-10, 1e-5);
    CHECK_GUARDS(gy);
    CHECK_GUARDS(gmean);
    CHECK_GUARDS(ginvstd);
    CHECK_GUARDS(gvar);
    CHECK_GUARDS(fscratch);

    // Backward from the CPU's statistics, so only the backward kernels are compared.
    Guarded gdy(dy), gdx(dx0), gdgamma(dgamma0), gdbeta(dbeta0), rmean(mean_ref), rinvstd(invstd_ref),
        scratch = Guarded::sized(int64_t(cuda::batchnorm_backward_scratch_bytes(d) / sizeof(float)));
    cuda::batchnorm_backward_train<kReluInput>(gx.data(), gdy.data(), ggamma.data(), rmean.data(), rinvstd.data(),
                                               gdx.data(), gdgamma.data(), gdbeta.data(), scratch.data(), d,
                                               stream());
    check_close("batchnorm backward dx", gdx.values(), dx_ref, 1e-10, 1e-5);
    check_close("batchnorm backward dgamma", gdgamma.values(), dgamma_ref, 1e-10, 1e-5);
    check_close("batchnorm backward dbeta", gdbeta.values(), dbeta_ref, 1e-10, 1e-5);
    CHECK_GUARDS(gdx);
    CHECK_GUARDS(gdgamma);
    CHECK_GUARDS(gdbeta);
    CHECK_GUARDS(scratch);

    // Each output may be null, as on the CPU.
    Guarded gdx2(dx0), gdgamma2(dgamma0), gdbeta2(dbeta0);
    cuda::batchnorm_backward_train<kReluInput>(gx.data(), gdy.data(), ggamma.data(), rmean.data(), rinvstd.data(),
                                               nullptr, gdgamma2.data(), nullptr, scratch.data(), d, stream());
    cuda::batchnorm_backward_train<kReluInput>(gx.data(), gdy.data(), ggamma.data(), rmean.data(), rinvstd.data(),
                                               gdx2.data(), nullptr, gdbeta2.data(), scratch.data(), d, stream());
    check_close("batchnorm backward dx alone", gdx2.values(), dx_ref, 1e-10, 1e-5);
    check_close("batchnorm backward dgamma alone", gdgamma2.values(), dgamma_ref, 1e-10, 1e-5);
    check_close("batchnorm backward dbeta alone", gdbeta2.values(), dbeta_ref, 1e-10, 1e-5);

    // Overwriting dx while dgamma and dbeta still accumulate in the same call.
    std::vector<float> dxo_ref = sentinel_values(n), dgammao_ref = dgamma0, dbetao_ref = dbeta0;
    cpu::batchnorm_backward_train<float, kReluInput>(x.data(), dy.data(), gamma.data(), mean_ref.data(),
                                                     invstd_ref.data(), dxo_ref.data(), dgammao_ref.data(),
                                                     dbetao_ref.data(), d, false);
    Guarded gdxo(sentinel_values(n)), gdgammao(dgamma0), gdbetao(dbeta0);
    cuda::batchnorm_backward_train<kReluInput>(gx.data(), gdy.data(), ggamma.data(), rmean.data(), rinvstd.data(),
                                               gdxo.data(), gdgammao.data(), gdbetao.data(), scratch.data(), d,
                                               stream(), false);
    const auto dxo = gdxo.values();
    check_finite("batchnorm backward dx, overwriting", dxo);
    check_close("batchnorm backward dx, overwriting", dxo, dxo_ref, 1e-10, 1e-5);
    check_close("batchnorm backward dgamma, dx overwritten", gdgammao.values(), dgammao_ref, 1e-10, 1e-5);
    check_close("batchnorm backward dbeta, dx overwritten", gdbetao.values(), dbetao_ref, 1e-10, 1e-5);
    CHECK_GUARDS(gdxo);
    CHECK_GUARDS(gdgammao);
    CHECK_GUARDS(gdbetao);

    Guarded gvar_ref(var_ref), gye = Guarded::sized(n);
    cuda::batchnorm_forward_eval<kReluInput>(gx.data(), ggamma.data(), gbeta.data(), rmean.data(), gvar_ref.data(),
                                             gye.data(), d, eps, stream());
    check_close("batchnorm inference forward", gye.values(), ye_ref, 1e-12, 1e-6);
    CHECK_GUARDS(gye);
    if (!kReluInput) continue;

    // The unfused kernels on relu(x) read the same values in the same order with the same arithmetic (no FMA
    // contraction), so they must agree with the fused ones exactly.
    Guarded gr = Guarded::sized(n), gy2 = Guarded::sized(n), gmean2 = Guarded::sized(d.c),
            ginvstd2 = Guarded::sized(d.c), gvar2 = Guarded::sized(d.c), gdr = Guarded::sized(n), gdx3(dx0),
            gdgamma3(dgamma0), gdbeta3(dbeta0), gye2 = Guarded::sized(n);
    cuda::relu_forward(gx.data(), gr.data(), n, stream());
    cuda::batchnorm_forward_train(gr.data(), ggamma.data(), gbeta.data(), gy2.data(), gmean2.data(), ginvstd2.data(),
                                  gvar2.data(), fscratch.data(), d, eps, stream());
    cuda::batchnorm_backward_train(gr.data(), gdy.data(), ggamma.data(), rmean.data(), rinvstd.data(), gdr.data(),
                                   gdgamma3.data(), gdbeta3.data(), scratch.data(), d, stream());
    cuda::relu_backward(gx.data(), gdr.data(), gdx3.data(), n, stream());
    cuda::batchnorm_forward_eval(gr.data(), ggamma.data(), gbeta.data(), rmean.data(), gvar_ref.data(), gye2.data(),
                                 d, eps, stream());
    check_close("relu, batchnorm: forward", gy2.values(), y, 0, 0);
    check_close("relu, batchnorm: mean", gmean2.values(), gmean.values(), 0, 0);
    check_close("relu, batchnorm: invstd", ginvstd2.values(), ginvstd.values(), 0, 0);
    check_close("relu, batchnorm: variance", gvar2.values(), gvar.values(), 0, 0);
    check_close("relu, batchnorm: backward dx", gdx3.values(), gdx.values(), 0, 0);
    check_close("relu, batchnorm: backward dgamma", gdgamma3.values(), gdgamma.values(), 0, 0);
    check_close("relu, batchnorm: backward dbeta", gdbeta3.values(), gdbeta.values(), 0, 0);
    check_close("relu, batchnorm: inference forward", gye2.values(), gye.values(), 0, 0);

    // The same in overwrite mode, the engine's: each gradient buffer starts as sentinels.
    Guarded gdro(sentinel_values(n)), gdxo3(sentinel_values(n));
    cuda::batchnorm_backward_train(gr.data(), gdy.data(), ggamma.data(), rmean.data(), rinvstd.data(), gdro.data(),
                                   nullptr, nullptr, scratch.data(), d, stream(), false);
    cuda::relu_backward(gx.data(), gdro.data(), gdxo3.data(), n, stream(), false);
    check_close("relu, batchnorm: backward dx, overwriting", gdxo3.values(), dxo, 0, 0);
  }
}

}  // namespace

TEST_CASE("batchnorm training forward, inference forward and backward match the CPU") { check_batchnorm<false>(); }

TEST_CASE("fused ReLU-then-batchnorm matches the CPU's fused kernels, and relu then batchnorm on the GPU exactly") {
  check_batchnorm<true>();
}

// The conv bias folded into the fused kernels' reads of x (conv_relu_batchnorm on the GPU): against the CPU's
// fused twins with the same bias, and, exactly, against both backends' kernels run on x + bias written out
// (one float addition either way, which is what cudnnAddTensor's separate pass computes).
TEST_CASE("fused ReLU-then-batchnorm with the conv bias folded in matches the CPU, and equals it on x + bias") {
  const float eps = 1e-3f;
  for (const NchwDims& d : kShapes) {
    CAPTURE(str(d));
    const int64_t n = d.count(), hw = d.plane();
    const auto c = static_cast<size_t>(d.c);
    auto x = random_values(n, seed_for(d, 50), -1.0, 2.0);
    // Bias values that move many inputs across the ReLU's kink, and a bias of exactly -x somewhere, where the
    // ReLU sees 0 and its gradient must be 0 as for x + b written out.
    const auto bias = random_values(d.c, seed_for(d, 51), -1.0, 1.0);
    for (int64_t i = 0; i < n; i += 11) x[size_t(i)] = -bias[size_t((i / hw) % d.c)];
    std::vector<float> xb(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) xb[size_t(i)] = x[size_t(i)] + bias[size_t((i / hw) % d.c)];
    const auto gamma = random_values(d.c, seed_for(d, 52), 0.5, 1.5), beta = random_values(d.c, seed_for(d, 53));
    const auto dy = random_values(n, seed_for(d, 54));

    // CPU twin with the folded bias, and its exact equality with the kernels on x + bias.
    std::vector<float> y_ref(static_cast<size_t>(n)), mean_ref(c), invstd_ref(c), var_ref(c);
    cpu::batchnorm_forward_train<float, true>(x.data(), gamma.data(), beta.data(), y_ref.data(), mean_ref.data(),
                                              invstd_ref.data(), var_ref.data(), d, eps, bias.data());
    std::vector<float> y_xb(static_cast<size_t>(n)), mean_xb(c), invstd_xb(c), var_xb(c);
    cpu::batchnorm_forward_train<float, true>(xb.data(), gamma.data(), beta.data(), y_xb.data(), mean_xb.data(),
                                              invstd_xb.data(), var_xb.data(), d, eps);
    CHECK(y_ref == y_xb);
    CHECK(mean_ref == mean_xb);
    CHECK(var_ref == var_xb);
    std::vector<float> dx_ref = sentinel_values(n), dgamma_ref(c, 0.0f), dbeta_ref(c, 0.0f);
    cpu::batchnorm_backward_train<float, true>(x.data(), dy.data(), gamma.data(), mean_ref.data(), invstd_ref.data(),
                                               dx_ref.data(), dgamma_ref.data(), dbeta_ref.data(), d, false,
                                               bias.data());
    std::vector<float> dx_xb = sentinel_values(n), dgamma_xb(c, 0.0f), dbeta_xb(c, 0.0f);
    cpu::batchnorm_backward_train<float, true>(xb.data(), dy.data(), gamma.data(), mean_ref.data(), invstd_ref.data(),
                                               dx_xb.data(), dgamma_xb.data(), dbeta_xb.data(), d, false);
    CHECK(dx_ref == dx_xb);
    CHECK(dgamma_ref == dgamma_xb);
    std::vector<float> ye_ref(static_cast<size_t>(n));
    cpu::batchnorm_forward_eval<float, true>(x.data(), gamma.data(), beta.data(), mean_ref.data(), var_ref.data(),
                                             ye_ref.data(), d, eps, bias.data());

    // The GPU with the folded bias against the CPU twin.
    Guarded gx(x), gxb(xb), gbias(bias), ggamma(gamma), gbeta(beta), gdy(dy), gy = Guarded::sized(n),
        gmean = Guarded::sized(d.c), ginvstd = Guarded::sized(d.c), gvar = Guarded::sized(d.c),
        fscratch = Guarded::sized(int64_t(cuda::batchnorm_forward_scratch_bytes(d) / sizeof(float))),
        bscratch = Guarded::sized(int64_t(cuda::batchnorm_backward_scratch_bytes(d) / sizeof(float)));
    cuda::batchnorm_forward_train<true>(gx.data(), ggamma.data(), gbeta.data(), gy.data(), gmean.data(),
                                        ginvstd.data(), gvar.data(), fscratch.data(), d, eps, stream(), gbias.data());
    const auto y = gy.values();
    check_finite("folded-bias forward", y);
    check_close("folded-bias mean", gmean.values(), mean_ref, 1e-12, kUlpRel);
    check_close("folded-bias variance", gvar.values(), var_ref, 1e-12, kUlpRel);
    check_close("folded-bias forward", y, y_ref, 1e-10, 1e-5);
    // Backward from the CPU's statistics, so only the backward kernels are compared.
    Guarded rmean(mean_ref), rinvstd(invstd_ref), rvar(var_ref), gdx(sentinel_values(n));
    Guarded gdgamma0(std::vector<float>(c, 0.0f)), gdbeta0(std::vector<float>(c, 0.0f));
    cuda::batchnorm_backward_train<true>(gx.data(), gdy.data(), ggamma.data(), rmean.data(), rinvstd.data(),
                                         gdx.data(), gdgamma0.data(), gdbeta0.data(), bscratch.data(), d, stream(),
                                         false, gbias.data());
    const auto dx = gdx.values();
    check_finite("folded-bias backward dx", dx);
    check_close("folded-bias backward dx", dx, dx_ref, 1e-10, 1e-5);
    check_close("folded-bias backward dgamma", gdgamma0.values(), dgamma_ref, 1e-10, 1e-5);
    check_close("folded-bias backward dbeta", gdbeta0.values(), dbeta_ref, 1e-10, 1e-5);
    Guarded gye = Guarded::sized(n);
    cuda::batchnorm_forward_eval<true>(gx.data(), ggamma.data(), gbeta.data(), rmean.data(), rvar.data(), gye.data(),
                                       d, eps, stream(), gbias.data());
    check_close("folded-bias inference forward", gye.values(), ye_ref, 1e-12, 1e-6);
    CHECK_GUARDS(gy);
    CHECK_GUARDS(gdx);
    CHECK_GUARDS(gye);

    // Exactly the GPU's own kernels on x + bias written out.
    Guarded gy2 = Guarded::sized(n), gmean2 = Guarded::sized(d.c), ginvstd2 = Guarded::sized(d.c),
            gvar2 = Guarded::sized(d.c), gdx2(sentinel_values(n)), gye2 = Guarded::sized(n);
    cuda::batchnorm_forward_train<true>(gxb.data(), ggamma.data(), gbeta.data(), gy2.data(), gmean2.data(),
                                        ginvstd2.data(), gvar2.data(), fscratch.data(), d, eps, stream());
    cuda::batchnorm_backward_train<true>(gxb.data(), gdy.data(), ggamma.data(), rmean.data(), rinvstd.data(),
                                         gdx2.data(), nullptr, nullptr, bscratch.data(), d, stream(), false);
    cuda::batchnorm_forward_eval<true>(gxb.data(), ggamma.data(), gbeta.data(), rmean.data(), rvar.data(),
                                       gye2.data(), d, eps, stream());
    check_close("folded bias vs x + bias: forward", y, gy2.values(), 0, 0);
    check_close("folded bias vs x + bias: mean", gmean.values(), gmean2.values(), 0, 0);
    check_close("folded bias vs x + bias: variance", gvar.values(), gvar2.values(), 0, 0);
    check_close("folded bias vs x + bias: backward dx", dx, gdx2.values(), 0, 0);
    check_close("folded bias vs x + bias: inference forward", gye.values(), gye2.values(), 0, 0);
  }
}

TEST_CASE("batchnorm moving statistics match the CPU for both rules") {
  const int c = 37;
  const int64_t count = 3 * 176 * 176;
  const float momentum = 0.99f;
  auto hm = random_values(c, 20), hv = random_values(c, 21, 0, 1), mm = random_values(c, 22),
       mv = random_values(c, 23, 0, 1);
  Guarded ghm(hm), ghv(hv), gmm(mm), gmv(mv), pmm(mm), pmv(mv);
  for (int64_t step = 1; step <= 3; ++step) {
    const auto bm = random_values(c, 30 + uint64_t(step)), bv = random_values(c, 40 + uint64_t(step), 0, 2);
    Guarded gbm(bm), gbv(bv);
    cpu::bn_moving_update_keras(hm.data(), hv.data(), mm.data(), mv.data(), bm.data(), bv.data(), c, count, step,
                                momentum);
    cuda::bn_moving_update_keras(ghm.data(), ghv.data(), gmm.data(), gmv.data(), gbm.data(), gbv.data(), c, count,
                                 step, momentum, stream());
    cuda::bn_moving_update_plain(pmm.data(), pmv.data(), gbm.data(), gbv.data(), c, count, momentum, stream());
  }
  auto pm_ref = random_values(c, 22), pv_ref = random_values(c, 23, 0, 1);
  for (int64_t step = 1; step <= 3; ++step) {
    const auto bm = random_values(c, 30 + uint64_t(step)), bv = random_values(c, 40 + uint64_t(step), 0, 2);
    cpu::bn_moving_update_plain(pm_ref.data(), pv_ref.data(), bm.data(), bv.data(), c, count, momentum);
  }
  check_close("Keras hidden mean", ghm.values(), hm, 1e-14, kUlpRel);
  check_close("Keras hidden variance", ghv.values(), hv, 1e-14, kUlpRel);
  check_close("Keras moving mean", gmm.values(), mm, 1e-14, kUlpRel);
  check_close("Keras moving variance", gmv.values(), mv, 1e-14, kUlpRel);
  check_close("plain moving mean", pmm.values(), pm_ref, 1e-14, kUlpRel);
  check_close("plain moving variance", pmv.values(), pv_ref, 1e-14, kUlpRel);
  CHECK_GUARDS(ghm);
  CHECK_GUARDS(gmv);
  CHECK_GUARDS(pmv);
}

TEST_CASE("MSE loss (a device scalar) and its gradient match the CPU") {
  for (int64_t n : {int64_t(1), int64_t(1000), int64_t(3) * 176 * 176, int64_t(1000003)}) {
    CAPTURE(n);
    const auto y = random_values(n, uint64_t(n) + 50, 0, 1), t = random_values(n, uint64_t(n) + 51, 0, 1),
               dy0 = random_values(n, uint64_t(n) + 52);
    const float dloss = 0.7f;
    const float loss_ref = cpu::mse_forward(y.data(), t.data(), n);
    std::vector<float> dy_ref = dy0;
    cpu::mse_backward(y.data(), t.data(), dloss, dy_ref.data(), n);

    Guarded gy(y), gt(t), gloss = Guarded::sized(1), gdloss(std::vector<float>{dloss}), gdy(dy0);
    Guarded scratch = Guarded::sized(int64_t(cuda::mse_forward_scratch_bytes() / sizeof(float)));
    cuda::mse_forward(gy.data(), gt.data(), n, gloss.data(), scratch.data(), stream());
    cuda::mse_backward(gy.data(), gt.data(), gdloss.data(), gdy.data(), n, stream());
    check_close("MSE loss", gloss.values(), {loss_ref}, 1e-12, kUlpRel);
    check_close("MSE gradient", gdy.values(), dy_ref, 1e-14, kUlpRel);
    CHECK_GUARDS(gloss);
    CHECK_GUARDS(scratch);
    CHECK_GUARDS(gdy);

    std::vector<float> dyo_ref = sentinel_values(n);
    cpu::mse_backward(y.data(), t.data(), dloss, dyo_ref.data(), n, false);
    Guarded gdyo(sentinel_values(n));
    cuda::mse_backward(gy.data(), gt.data(), gdloss.data(), gdyo.data(), n, stream(), false);
    const auto dyo = gdyo.values();
    check_finite("MSE gradient, overwriting", dyo);
    check_close("MSE gradient, overwriting", dyo, dyo_ref, 1e-14, kUlpRel);
    CHECK_GUARDS(gdyo);
  }
}

TEST_CASE("RMSprop updates every parameter in one launch as on the CPU") {
  for (int64_t n : {int64_t(1001), int64_t(373569)}) {
    CAPTURE(n);
    auto p = random_values(n, uint64_t(n) + 60), acc = std::vector<float>(size_t(n), 0.0f);
    Guarded gp(p), gacc(acc);
    for (int step = 0; step < 3; ++step) {
      auto g = random_values(n, uint64_t(n) + 61 + uint64_t(step));
      for (int64_t i = 0; i < n; i += 11) g[size_t(i)] = 0.0f;
      Guarded gg(g);
      cpu::rmsprop_update(p.data(), acc.data(), g.data(), n, 1e-3f, 0.9f, 1e-7f);
      cuda::rmsprop_update(gp.data(), gacc.data(), gg.data(), n, 1e-3f, 0.9f, 1e-7f, stream());
    }
    check_close("RMSprop parameters", gp.values(), p, 1e-14, kUlpRel);
    check_close("RMSprop accumulators", gacc.values(), acc, 1e-14, kUlpRel);
    CHECK_GUARDS(gp);
    CHECK_GUARDS(gacc);
  }
}

namespace {

struct ConvCase {
  NchwDims x;
  int k;
};

// The model's convolutions (first layer 1->32, 32->32 at 176x176, 64->128 and 128->128 at 44x44, the
// last layer 32->1) with odd batch sizes, a small odd shape and a 1x1 image (padding only).
const std::vector<ConvCase> kConvCases = {{{3, 5, 7, 9}, 4},       {{1, 2, 1, 1}, 3},       {{3, 1, 176, 176}, 32},
                                          {{3, 32, 176, 176}, 32}, {{3, 64, 44, 44}, 128}, {{3, 128, 44, 44}, 128},
                                          {{3, 32, 176, 176}, 1}};

// Runs one convolution forward and backward on both backends and compares; `dx`, `dw`, `db` choose
// which gradients are asked for (the others must stay untouched). With overwrite_dx, dx starts as NaN
// sentinels on both backends and is overwritten, while dw and db still accumulate.
void check_conv(const ConvCase& cc, double max_nmse, double max_abs_rel, bool dx = true, bool dw = true,
                bool db = true, bool overwrite_dx = false) {
  const NchwDims& xd = cc.x;
  const int k = cc.k;
  CAPTURE(str(xd));
  CAPTURE(k);
  const int64_t nx = xd.count(), nw = int64_t(k) * xd.c * 9, ny = int64_t(xd.n) * k * xd.plane();
  const auto x = random_values(nx, seed_for(xd, 70) + uint64_t(k)), w = random_values(nw, seed_for(xd, 71), -0.1, 0.1),
             b = random_values(k, seed_for(xd, 72), -0.1, 0.1), dy = random_values(ny, seed_for(xd, 73));
  CAPTURE(overwrite_dx);
  const auto dx0 = overwrite_dx ? sentinel_values(nx) : random_values(nx, seed_for(xd, 74)),
             dw0 = random_values(nw, seed_for(xd, 75)), db0 = random_values(k, seed_for(xd, 76));

  std::vector<float> scratch(static_cast<size_t>(cpu::conv3x3_scratch_elems(xd, k)));
  std::vector<float> y_ref(static_cast<size_t>(ny));
  std::vector<float> dx_ref = dx0, dw_ref = dw0, db_ref = db0;
  cpu::conv3x3_forward(x.data(), w.data(), b.data(), y_ref.data(), xd, k, scratch.data());
  cpu::conv3x3_backward(x.data(), w.data(), dy.data(), dx ? dx_ref.data() : nullptr, dw ? dw_ref.data() : nullptr,
                        db ? db_ref.data() : nullptr, xd, k, scratch.data(), !overwrite_dx);

  auto& conv = mriae::Context::get().cuda().conv();
  Guarded gx(x), gw(w), gb(b), gy = Guarded::sized(ny), gdy(dy), gdx(dx0), gdw(dw0), gdb(db0);
  conv.forward(gx.data(), gw.data(), gb.data(), gy.data(), xd, k);
  conv.backward(gx.data(), gw.data(), gdy.data(), dx ? gdx.data() : nullptr, dw ? gdw.data() : nullptr,
                db ? gdb.data() : nullptr, xd, k, !overwrite_dx);
  INFO("algorithms: " << conv.describe(xd, k));
  const auto y = gy.values();
  check_finite("conv forward", y);
  check_close("conv forward", y, y_ref, max_nmse, max_abs_rel);
  const auto gdx_values = gdx.values();
  if (overwrite_dx && dx) check_finite("conv backward dx, overwriting", gdx_values);
  check_close("conv backward dx", gdx_values, dx_ref, max_nmse, max_abs_rel);
  check_close("conv backward dw", gdw.values(), dw_ref, max_nmse, max_abs_rel);
  check_close("conv backward db", gdb.values(), db_ref, max_nmse, max_abs_rel);
  for (const Guarded* g : {&gx, &gw, &gb, &gy, &gdy, &gdx, &gdw, &gdb}) CHECK(g->guards_intact());
}

}  // namespace

TEST_CASE("cuDNN convolution forward and backward match the CPU in strict FP32") {
  ScopedCudaOptions strict(mriae::CudaOptions{});
  for (const ConvCase& cc : kConvCases) check_conv(cc, 1e-8, 1e-4);
  // Each gradient alone (the first layer needs no dx).
  check_conv(kConvCases[0], 1e-8, 1e-4, false, true, true);
  check_conv(kConvCases[0], 1e-8, 1e-4, true, false, false);
  check_conv(kConvCases[0], 1e-8, 1e-4, false, false, true);
  // Overwriting dx (cuDNN's beta = 0), as the engine does for a fresh gradient buffer.
  for (const ConvCase& cc : kConvCases) check_conv(cc, 1e-8, 1e-4, true, true, true, true);
  check_conv(kConvCases[0], 1e-8, 1e-4, true, false, false, true);
}

TEST_CASE("cuDNN convolution in deterministic mode matches the CPU and repeats bit for bit") {
  mriae::CudaOptions o;
  o.deterministic = true;
  ScopedCudaOptions det(o);
  for (const ConvCase& cc : kConvCases) check_conv(cc, 1e-8, 1e-4);

  const ConvCase cc = kConvCases[3];
  const NchwDims& xd = cc.x;
  const int64_t nx = xd.count(), nw = int64_t(cc.k) * xd.c * 9, ny = int64_t(xd.n) * cc.k * xd.plane();
  Guarded gx(random_values(nx, 80)), gw(random_values(nw, 81, -0.1, 0.1)), gb(random_values(cc.k, 82)),
      gdy(random_values(ny, 83));
  std::vector<std::vector<float>> runs;
  for (int r = 0; r < 2; ++r) {
    Guarded gy = Guarded::sized(ny), gdx = Guarded::sized(nx), gdw = Guarded::sized(nw), gdb = Guarded::sized(cc.k);
    auto& conv = mriae::Context::get().cuda().conv();
    conv.forward(gx.data(), gw.data(), gb.data(), gy.data(), xd, cc.k);
    conv.backward(gx.data(), gw.data(), gdy.data(), gdx.data(), gdw.data(), gdb.data(), xd, cc.k);
    for (const Guarded* g : {&gy, &gdx, &gdw, &gdb}) runs.push_back(g->values());
  }
  for (size_t i = 0; i < 4; ++i) CHECK(std::memcmp(runs[i].data(), runs[i + 4].data(), runs[i].size() * 4) == 0);
}

TEST_CASE("cuDNN convolution with TF32 allowed stays within TF32 accuracy") {
  mriae::CudaOptions o;
  o.tf32 = true;
  ScopedCudaOptions tf32(o);
  for (const ConvCase& cc : kConvCases) check_conv(cc, 1e-5, 1e-2);
}

TEST_CASE("convolution algorithms are chosen per shape, and a new batch size gets its own choice") {
  ScopedCudaOptions strict(mriae::CudaOptions{});  // also starts from an empty plan cache
  auto& conv = mriae::Context::get().cuda().conv();
  CHECK(conv.plan_count() == 0);
  for (int n : {3, 3, 5, 3, 5}) {
    const NchwDims xd{n, 8, 16, 16};
    Guarded gx = Guarded::sized(xd.count()), gw = Guarded::sized(8 * 8 * 9), gy = Guarded::sized(xd.count());
    conv.forward(gx.data(), gw.data(), nullptr, gy.data(), xd, 8);
    CHECK(!conv.describe(xd, 8).empty());
  }
  CHECK(conv.plan_count() == 2);
}
