// Training-step throughput of the engine's CPU path: forward, backward and RMSprop on random [0,1) images.
// Prints one JSON line so bench/run_cpu.sh can put it beside PyTorch's figure.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/random.h"
#include "engine/rmsprop.h"
#include "model/autoencoder.h"

using namespace mriae;

int main(int argc, char** argv) {
  int batch = 8, size = 176, warmup = 2, steps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const int v = std::atoi(argv[i + 1]);
    if (a == "--batch") batch = v;
    else if (a == "--size") size = v;
    else if (a == "--warmup") warmup = v;
    else if (a == "--steps") steps = v;
    else {
      std::fprintf(stderr, "usage: %s [--batch N] [--size S] [--warmup N] [--steps N]\n", argv[0]);
      return 2;
    }
  }
  Autoencoder model({});
  RMSprop opt(model.parameters(), {});
  Tensor x = Tensor::empty({batch, 1, size, size});
  Rng rng(1);
  for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = float(rng.uniform());

  std::vector<double> seconds;
  float loss = 0;
  for (int s = 0; s < warmup + steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    Tape tape;
    model.parameters().zero_grad();
    Var l = mse_loss(&tape, model.forward(&tape, Var(x), true), x);
    tape.backward(l);
    opt.step();
    loss = l.value().item();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s >= warmup) seconds.push_back(dt);
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  std::printf("{\"engine\": \"mriae-cpu\", \"batch\": %d, \"size\": %d, \"steps\": %d, \"median_step_s\": %.4f, "
              "\"images_per_s\": %.3f, \"last_loss\": %.6f}\n",
              batch, size, steps, median, batch / median, loss);
  return 0;
}
