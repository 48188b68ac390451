// Batchnorm over a batch shared by several processes (synchronised batchnorm, engine/collectives.h):
// the CPU kernels with a ChannelSums hook, run by two threads standing in for two ranks, each on its part
// of a batch, must compute what one call computes on the whole batch. Without a hook they are the fused
// single-process kernels (the parity tests hold those to their bits).
#include <doctest/doctest.h>

#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "io/batch_loader.h"
#include "kernels/cpu/batchnorm.h"

using namespace mriae;

namespace {

// MPI_Allreduce(MPI_SUM) between two threads: each waits for the other's sums, and both get the total.
class TwoPartySum {
 public:
  void sum(double* v, int n) {
    std::unique_lock<std::mutex> lock(mu_);
    const int generation = generation_;
    if (arrived_ == 0)
      acc_.assign(v, v + n);
    else
      for (int i = 0; i < n; ++i) acc_[size_t(i)] += v[i];
    if (++arrived_ == 2) {
      arrived_ = 0;
      result_ = acc_;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != generation; });
    }
    std::copy(result_.begin(), result_.end(), v);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<double> acc_, result_;
  int arrived_ = 0, generation_ = 0;
};

std::vector<double> random_values(size_t n, unsigned seed, double lo, double hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = u(gen);
  return v;
}

template <bool kRelu> void check_shared_equals_whole(int first_part) {
  const NchwDims d{5, 3, 4, 6};
  const size_t per = size_t(d.c) * d.plane(), n = size_t(d.n) * per;
  const std::vector<double> x = random_values(n, 1, -1, 2), dy = random_values(n, 2, -1, 1);
  const std::vector<double> gamma = random_values(size_t(d.c), 3, 0.5, 1.5), beta = random_values(size_t(d.c), 4, -1, 1);
  // The whole batch in one call.
  std::vector<double> y(n), mean(size_t(d.c)), invstd(size_t(d.c)), var(size_t(d.c)), dx(n), dg(size_t(d.c)),
      db(size_t(d.c));
  cpu::batchnorm_forward_train<double, kRelu>(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), invstd.data(),
                                              var.data(), d, 1e-3, nullptr, nullptr);
  cpu::batchnorm_backward_train<double, kRelu>(x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(), dx.data(),
                                               dg.data(), db.data(), d, false, nullptr, nullptr);
  // Two "ranks", rows [0, first_part) and [first_part, n).
  TwoPartySum exchange;
  const cpu::ChannelSums hook = [&](double* v, int k) { exchange.sum(v, k); };
  std::vector<double> sy(n), sdx(n);
  std::vector<double> smean[2], sinv[2], svar[2], sdg[2], sdb[2];
  int64_t counts[2] = {0, 0};
  auto rank = [&](int r) {
    const int begin = r == 0 ? 0 : first_part, rows = r == 0 ? first_part : d.n - first_part;
    const NchwDims part{rows, d.c, d.h, d.w};
    for (auto* v : {&smean[r], &sinv[r], &svar[r]}) v->assign(size_t(d.c), 0);
    sdg[r].assign(size_t(d.c), 0);
    sdb[r].assign(size_t(d.c), 0);
    const size_t off = size_t(begin) * per;
    counts[r] = cpu::batchnorm_forward_train<double, kRelu>(x.data() + off, gamma.data(), beta.data(), sy.data() + off,
                                                            smean[r].data(), sinv[r].data(), svar[r].data(), part,
                                                            1e-3, nullptr, &hook);
    cpu::batchnorm_backward_train<double, kRelu>(x.data() + off, dy.data() + off, gamma.data(), smean[r].data(),
                                                 sinv[r].data(), sdx.data() + off, sdg[r].data(), sdb[r].data(), part,
                                                 false, nullptr, &hook);
  };
  std::thread other(rank, 1);
  rank(0);
  other.join();

  CHECK(counts[0] == int64_t(d.n) * d.plane());
  CHECK(counts[1] == counts[0]);
  for (size_t i = 0; i < n; ++i) {
    REQUIRE(sy[i] == doctest::Approx(y[i]).epsilon(1e-12));
    REQUIRE(sdx[i] == doctest::Approx(dx[i]).epsilon(1e-10));
  }
  for (int r = 0; r < 2; ++r)
    for (size_t c = 0; c < size_t(d.c); ++c) {
      CHECK(smean[r][c] == doctest::Approx(mean[c]).epsilon(1e-13));
      CHECK(svar[r][c] == doctest::Approx(var[c]).epsilon(1e-13));
      CHECK(sinv[r][c] == doctest::Approx(invstd[c]).epsilon(1e-13));
    }
  // dgamma and dbeta: each rank its own part; their sum is the whole batch's (the gradient allreduce adds them).
  for (size_t c = 0; c < size_t(d.c); ++c) {
    CHECK(sdg[0][c] + sdg[1][c] == doctest::Approx(dg[c]).epsilon(1e-12));
    CHECK(sdb[0][c] + sdb[1][c] == doctest::Approx(db[c]).epsilon(1e-12));
    CHECK(sdg[0][c] != doctest::Approx(dg[c]).epsilon(1e-6));  // a part, not the whole
  }
}

}  // namespace

TEST_CASE("batchnorm over a batch shared by two ranks computes what one call on the whole batch does") {
  SUBCASE("even parts") { check_shared_equals_whole<false>(2); }  // 5 rows: 2 + 3
  SUBCASE("uneven parts, ReLU input") { check_shared_equals_whole<true>(4); }  // 4 + 1
}

TEST_CASE("a global batch is split into contiguous parts, the first ranks taking one more") {
  const io::ShardRange a = io::shard_range(7, 0, 3), b = io::shard_range(7, 1, 3), c = io::shard_range(7, 2, 3);
  CHECK(a.begin == 0);
  CHECK(a.count == 3);
  CHECK(b.begin == 3);
  CHECK(b.count == 2);
  CHECK(c.begin == 5);
  CHECK(c.count == 2);
  CHECK(io::shard_range(1, 1, 2).count == 0);
  CHECK(io::shard_range(8, 1, 2).begin == 4);
}
