// Op-level behaviour of the engine (autograd wiring, fusion) on the CPU.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "engine/ops.h"
#include "engine/random.h"

using namespace mriae;

namespace {

Tensor random_tensor(const Shape& s, uint64_t seed, double lo = -1, double hi = 1) {
  Rng rng(seed);
  std::vector<float> v(size_t(shape_numel(s)));
  for (float& x : v) x = float(rng.uniform(lo, hi));
  return Tensor::from_vector(s, v);
}

// A model block's inputs in the dtype dt: x of shape xs, k filters, and random batchnorm parameters and moving
// statistics; seeds seed .. seed + 6.
struct RandomBlock {
  Var x, w, b, gamma, beta;
  BatchNormState st;
};
RandomBlock random_block(const Shape& xs, int64_t k, DType dt, uint64_t seed) {
  RandomBlock r{Var(random_tensor(xs, seed).to(dt)),
                Var(random_tensor({k, xs[1], 3, 3}, seed + 1, -0.5, 0.5).to(dt), true),
                Var(random_tensor({k}, seed + 2, -0.2, 0.2).to(dt), true),
                Var(random_tensor({k}, seed + 3, 0.5, 1.5).to(dt), true),
                Var(random_tensor({k}, seed + 4).to(dt), true),
                BatchNormState::create(k, Device::CPU, dt)};
  r.st.moving_mean = random_tensor({k}, seed + 5, -0.3, 0.3).to(dt);
  r.st.moving_var = random_tensor({k}, seed + 6, 0.05, 2.0).to(dt);
  return r;
}

// f(dtype) with each register-tile family forced (MRIAE_CPU_TILES), in float32 and float64.
void for_tiles_and_dtypes(const std::function<void(DType)>& f) {
  for (const char* tiles : {"wide", "narrow"})
    for (DType dt : {DType::Float32, DType::Float64}) {
      CAPTURE(tiles);
      CAPTURE(dtype_name(dt));
      REQUIRE(setenv("MRIAE_CPU_TILES", tiles, 1) == 0);
      f(dt);
      unsetenv("MRIAE_CPU_TILES");
    }
}

std::vector<double> values(const Tensor& t) { return t.to(DType::Float64).to_vector<double>(); }

}  // namespace

TEST_CASE("relu_batchnorm gives the same bits as relu then batchnorm") {
  const Shape s{3, 4, 7, 9};
  const Tensor xv = random_tensor(s, 1), r = random_tensor(s, 2);
  const Var g(random_tensor({4}, 3, 0.5, 1.5), true), b(random_tensor({4}, 4), true);
  BatchNormOptions opt;
  struct Out {
    std::vector<float> y, dx, dg, db, mm, mv, eval;
  };
  auto run = [&](bool fused) {
    Var x(xv.clone(), true), gamma(g.value().clone(), true), beta(b.value().clone(), true);
    BatchNormState st = BatchNormState::create(4, Device::CPU);
    Tape tape;
    Var y = fused ? relu_batchnorm(&tape, x, gamma, beta, st, true, opt)
                  : batchnorm(&tape, relu(&tape, x), gamma, beta, st, true, opt);
    // L = sum(y * r): upstream gradient r.
    Var loss = mse_loss(&tape, y, Tensor::zeros(s));  // exercises the tape; then add r directly
    (void)loss;
    Tape t2;
    Var x2(xv.clone(), true);
    Var y2 = fused ? relu_batchnorm(&t2, x2, gamma, beta, st, true, opt)
                   : batchnorm(&t2, relu(&t2, x2), gamma, beta, st, true, opt);
    Var l2 = mse_loss(&t2, y2, r);
    t2.backward(l2);
    Var e = fused ? relu_batchnorm(nullptr, Var(xv), gamma, beta, st, false, opt)
                  : batchnorm(nullptr, relu(nullptr, Var(xv)), gamma, beta, st, false, opt);
    return Out{y2.value().to_vector(),     x2.grad().to_vector(),   gamma.grad().to_vector(),
               beta.grad().to_vector(),    st.moving_mean.to_vector(), st.moving_var.to_vector(),
               e.value().to_vector()};
  };
  const Out a = run(false), f = run(true);
  CHECK(a.y == f.y);
  CHECK(a.dx == f.dx);
  CHECK(a.dg == f.dg);
  CHECK(a.db == f.db);
  CHECK(a.mm == f.mm);
  CHECK(a.mv == f.mv);
  CHECK(a.eval == f.eval);
  // The input had negative values, so the ReLU mattered: some gradients are exactly zero.
  int zeros = 0;
  for (float v : f.dx) zeros += v == 0.0f;
  CHECK(zeros > 0);
}

TEST_CASE("a variable used twice accumulates both gradients") {
  // loss = mean((relu(x) - t)^2) over a batch made of the same x twice, via upsample's 2x2 fan-out:
  // d/dx of mean((up(x) - 0)^2) = 4 * 2 x / (4 n) = 2x / n for x > 0.
  const Tensor xv = random_tensor({1, 1, 2, 3}, 9, 0.1, 1.0);
  Var x(xv, true);
  Tape tape;
  Var y = upsample2(&tape, relu(&tape, x));
  Var loss = mse_loss(&tape, y, Tensor::zeros(y.shape()));
  tape.backward(loss);
  const auto g = x.grad().to_vector(), v = xv.to_vector();
  for (size_t i = 0; i < v.size(); ++i) CHECK(g[i] == doctest::Approx(2.0 * v[i] / 6.0).epsilon(1e-6));
}

TEST_CASE("in inference, the CPU's fused convolution + ReLU + batchnorm gives the bits of the three ops in turn") {
  // The fused op normalises each stretch of the convolution's output inside the convolution kernel. Shapes:
  // the channel-blocked kernels (16 -> 40 channels, a partial block of 32 lanes; 19 rows: bands of 8 with a
  // short last one), the row kernels (1 -> 24, the model's first layer) and the one-channel kernel (12 -> 1,
  // the last layer's shape, 37 columns: a partial tile of 32 and of 16), each with the wide and the narrow
  // register tiles, in float32 and float64.
  struct Case {
    Shape x;
    int64_t k;
  };
  for (const Case& cs : {Case{{2, 16, 19, 13}, 40}, Case{{3, 1, 9, 21}, 24}, Case{{2, 12, 11, 37}, 1}}) {
    CAPTURE(cs.k);
    for_tiles_and_dtypes([&](DType dt) {
      const int64_t k = cs.k;
      RandomBlock r = random_block(cs.x, k, dt, 11);
      const BatchNormOptions opt;
      const Tensor fused = conv_relu_batchnorm(nullptr, r.x, r.w, r.b, r.gamma, r.beta, r.st, false, opt).value();
      const Tensor conv = conv2d3x3(nullptr, r.x, r.w, r.b).value();
      const Tensor apart = relu_batchnorm(nullptr, Var(conv), r.gamma, r.beta, r.st, false, opt).value();
      REQUIRE(fused.shape() == apart.shape());
      const std::vector<double> f = values(fused), a = values(apart), z = values(conv);
      size_t differ = 0, relu_zeroed = 0;
      for (size_t i = 0; i < f.size(); ++i) {
        differ += std::memcmp(&f[i], &a[i], sizeof(double)) != 0;
        relu_zeroed += z[i] <= 0;
      }
      CHECK(differ == 0);
      CHECK(relu_zeroed > 0);  // the ReLU had something to do
      // And against the definition, from the convolution's own output.
      const std::vector<double> g = values(r.gamma.value()), be = values(r.beta.value()),
                                mu = values(r.st.moving_mean), var = values(r.st.moving_var);
      const int64_t plane = cs.x[2] * cs.x[3];
      double worst = 0;
      for (size_t i = 0; i < f.size(); ++i) {
        const size_t ch = size_t(int64_t(i) / plane % k);
        const double want = (std::max(z[i], 0.0) - mu[ch]) / std::sqrt(var[ch] + opt.eps) * g[ch] + be[ch];
        worst = std::max(worst, std::abs(f[i] - want));
      }
      CHECK(worst < (dt == DType::Float32 ? 1e-5 : 1e-12));
    });
  }
}

TEST_CASE("the fused inference block refuses a tape that wants gradients, and mismatched batchnorm tensors") {
  const Var x(random_tensor({1, 2, 4, 4}, 1)), w(random_tensor({16, 2, 3, 3}, 2), true),
      b(random_tensor({16}, 3), true);
  const Var gamma(random_tensor({16}, 4)), beta(random_tensor({16}, 5));
  BatchNormState st = BatchNormState::create(16, Device::CPU);
  Tape tape;
  CHECK_THROWS_WITH_AS(conv_relu_batchnorm(&tape, x, w, b, gamma, beta, st, false, BatchNormOptions{}),
                       doctest::Contains("inference mode is for evaluation only"), std::invalid_argument);
  BatchNormState wrong = BatchNormState::create(8, Device::CPU);
  CHECK_THROWS_WITH_AS(conv_relu_batchnorm(nullptr, x, w, b, gamma, beta, wrong, false, BatchNormOptions{}),
                       doctest::Contains("do not match 16 channels"), std::invalid_argument);
}

TEST_CASE("a convolution of upsample2(x) made in cache gives the bits of upsample2 then the convolution") {
  // In inference the CPU kernels upsample x band by band as they pad it. Each kernel family (blocked, rows,
  // one channel), with and without the fused batchnorm, both register tiles, float32 and float64; odd half
  // sizes (5 x 7, 6 x 19) so that the upsampled rows and columns leave partial bands and tiles.
  struct Case {
    Shape x;
    int64_t k;
  };
  for (const Case& cs : {Case{{2, 16, 5, 7}, 40}, Case{{3, 1, 5, 11}, 24}, Case{{2, 12, 6, 19}, 1}}) {
    CAPTURE(cs.k);
    for_tiles_and_dtypes([&](DType dt) {
      RandomBlock r = random_block(cs.x, cs.k, dt, 21);
      const BatchNormOptions opt;
      const Var up = upsample2(nullptr, r.x);
      const Tensor conv_in_cache = conv2d3x3(nullptr, r.x, r.w, r.b, ConvInput::Upsampled2).value();
      const Tensor conv_apart = conv2d3x3(nullptr, up, r.w, r.b).value();
      const Tensor block_in_cache = conv_relu_batchnorm(nullptr, r.x, r.w, r.b, r.gamma, r.beta, r.st, false, opt,
                                                        ConvInput::Upsampled2)
                                        .value();
      const Tensor block_apart = relu_batchnorm(nullptr, Var(conv_apart), r.gamma, r.beta, r.st, false, opt).value();
      REQUIRE(conv_in_cache.shape() == Shape{cs.x[0], cs.k, 2 * cs.x[2], 2 * cs.x[3]});
      REQUIRE(block_in_cache.shape() == conv_in_cache.shape());
      CHECK(values(conv_in_cache) == values(conv_apart));
      CHECK(values(block_in_cache) == values(block_apart));
    });
  }
}

TEST_CASE("with a tape that wants gradients, a convolution of upsample2(x) records both ops") {
  const Tensor xv = random_tensor({1, 2, 3, 4}, 31);
  const Var w(random_tensor({16, 2, 3, 3}, 32), true), b(random_tensor({16}, 33), true);
  const Tensor target = random_tensor({1, 16, 6, 8}, 34);
  auto grad_of_x = [&](bool fused_form) {
    Var x(xv.clone(), true);
    Tape tape;
    Var y = fused_form ? conv2d3x3(&tape, x, w, b, ConvInput::Upsampled2) : conv2d3x3(&tape, upsample2(&tape, x), w, b);
    Var loss = mse_loss(&tape, y, target);
    tape.backward(loss);
    return x.grad().to_vector();
  };
  const std::vector<float> a = grad_of_x(true), e = grad_of_x(false);
  CHECK(a == e);
  double norm = 0;
  for (float v : a) norm += double(v) * v;
  CHECK(norm > 0);
}

TEST_CASE("a block's max pooling fused into its CPU inference pass gives the bits of maxpool2 after the block") {
  // The channel-blocked kernels pool each band of rows of their output while it is in cache. 19 x 13 (odd: the
  // last row and column are dropped, and the last band has 3 rows), 16 x 22, from an upsampled input too; the
  // row kernels (1 input channel) do not fuse the pooling, and the op runs maxpool2 after them instead.
  struct Case {
    Shape x;
    int64_t k;
    ConvInput input;
  };
  for (const Case& cs : {Case{{2, 16, 19, 13}, 40, ConvInput::AsIs}, Case{{1, 24, 16, 22}, 32, ConvInput::AsIs},
                         Case{{2, 16, 5, 7}, 33, ConvInput::Upsampled2}, Case{{3, 1, 9, 21}, 24, ConvInput::AsIs}}) {
    CAPTURE(cs.k);
    for_tiles_and_dtypes([&](DType dt) {
      RandomBlock r = random_block(cs.x, cs.k, dt, 41);
      const BatchNormOptions opt;
      const Tensor fused = conv_relu_batchnorm(nullptr, r.x, r.w, r.b, r.gamma, r.beta, r.st, false, opt, cs.input,
                                               BlockOutput::MaxPooled2)
                               .value();
      const Tensor block =
          conv_relu_batchnorm(nullptr, r.x, r.w, r.b, r.gamma, r.beta, r.st, false, opt, cs.input).value();
      const Tensor apart = maxpool2(nullptr, Var(block)).value();
      REQUIRE(fused.shape() == apart.shape());
      CHECK(fused.dim(2) == block.dim(2) / 2);
      CHECK(values(fused) == values(apart));
    });
  }
}
