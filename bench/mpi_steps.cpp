// Data-parallel training steps on the CPU: run alone, or under mpirun (bench/run_mpi.sh), on random images
// of one global batch. Rank 0 prints one JSON line: images/s over the timed steps (median step), and the
// share of a step spent in collectives (the gradient allreduce, and the batchnorm statistics of --bn
// global), which includes waiting for the slowest rank.
// Usage: mpi_steps [--batch 8] [--size 176] [--steps 6] [--bn global|per-rank]  (the first step is warm-up)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/collectives.h"
#include "io/batch_loader.h"
#include "model/training_step.h"

using namespace mriae;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Forwards to the real collectives and adds up the time spent in them.
class Timed final : public Collectives {
 public:
  explicit Timed(Collectives& inner) : inner_(inner) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  void sum(double* d, int64_t n) override { timed([&] { inner_.sum(d, n); }); }
  void max(double* d, int64_t n) override { timed([&] { inner_.max(d, n); }); }
  void sum(Tensor& t) override {
    timed([&] { inner_.sum(t); });
    grad_seconds += last_;
  }
  [[noreturn]] void abort(int code) override {
    inner_.abort(code);
    std::_Exit(code);  // not reached
  }
  std::string describe() const override { return inner_.describe(); }
  double seconds = 0, grad_seconds = 0;

 private:
  template <typename F> void timed(F&& f) {
    const double t0 = now();
    f();
    last_ = now() - t0;
    seconds += last_;
  }
  Collectives& inner_;
  double last_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  int64_t batch = 8, size = 176;
  int steps = 6;
  std::string bn = "global";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--batch")) batch = std::stoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--size")) size = std::stoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--steps")) steps = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--bn")) bn = argv[i + 1];
    else { std::fprintf(stderr, "mpi_steps: unknown option %s\n", argv[i]); return 2; }
  }
  const std::unique_ptr<Collectives> processes = connect_processes(Device::CPU);
  Timed timed(*processes);
  const io::ShardRange part = io::shard_range(batch, timed.rank(), timed.size());
  AutoencoderConfig mc;
  if (bn == "global") mc.bn.shared_batch = &timed;
  Autoencoder model(mc);
  RMSprop optimizer(model.parameters(), {1e-3, 0.9, 1e-7});
  std::vector<float> pixels(size_t(part.count * size * size));
  std::mt19937 gen(13 + unsigned(timed.rank()));
  std::uniform_real_distribution<float> u(0, 1);
  for (float& p : pixels) p = u(gen);
  const Tensor images = Tensor::from_vector({part.count, 1, size, size}, pixels);

  std::vector<double> step_s, reduce_s, grad_s;
  for (int s = 0; s < steps; ++s) {
    const double r0 = timed.seconds, g0 = timed.grad_seconds, t0 = now();
    train_step(model, optimizer, images, images, BatchShare{&timed, part.count, batch});
    step_s.push_back(now() - t0);
    reduce_s.push_back(timed.seconds - r0);
    grad_s.push_back(timed.grad_seconds - g0);
  }
  // Median over the timed steps (the first is warm-up), on rank 0.
  auto median = [](std::vector<double> v) {
    v.erase(v.begin());
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double step = median(step_s), reduce = median(reduce_s), grad = median(grad_s);
  if (timed.rank() == 0)
    std::printf("{\"ranks\": %d, \"threads\": %d, \"batch\": %lld, \"size\": %lld, \"bn\": \"%s\", "
                "\"median_step_s\": %.4f, \"images_per_s\": %.2f, \"collectives_s\": %.4f, \"grad_allreduce_s\": %.4f, "
                "\"collectives_share\": %.3f}\n",
                timed.size(), omp_get_max_threads(), (long long)batch, (long long)size, bn.c_str(), step,
                double(batch) / step, reduce, grad, reduce / step);
  return 0;
}
