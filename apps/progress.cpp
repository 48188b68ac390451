#include "apps/progress.h"

#include <cmath>

namespace mriae {

std::string Progress::bar(int64_t done, int64_t total, int width) {
  const int filled = total > 0 ? int(double(width) * double(done) / double(total)) : width;
  std::string b = "[";
  for (int i = 0; i < width; ++i) b += i < filled ? '=' : (i == filled && done < total ? '>' : '.');
  if (done >= total) b.back() = '=';
  return b + "]";
}

std::string Progress::duration(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%ds", int(std::lround(s)));
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%d:%02d", int(s) / 60, int(s) % 60);
  else std::snprintf(buf, sizeof buf, "%d:%02d:%02d", int(s) / 3600, int(s) % 3600 / 60, int(s) % 60);
  return buf;
}

void Progress::begin_epoch(int64_t epoch, int64_t epochs, int64_t samples) {
  samples_ = samples;
  start_ = last_draw_ = std::chrono::steady_clock::now();
  if (out_) std::fprintf(out_, "Epoch %lld/%lld\n", (long long)epoch, (long long)epochs), std::fflush(out_);
}

double Progress::epoch_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done, int64_t steps, double running_loss) {
  if (!out_ || !interactive_) return;
  const auto now = std::chrono::steady_clock::now();
  // Redraw at most ten times a second: a terminal is slower than a small batch.
  if (done < samples_ && std::chrono::duration<double>(now - last_draw_).count() < 0.1) return;
  last_draw_ = now;
  const double elapsed = epoch_seconds();
  const double eta = done > 0 ? elapsed / double(done) * double(samples_ - done) : 0;
  const int digits = int(std::to_string(samples_).size());
  std::fprintf(out_, "\r%*lld/%lld %s - ETA: %s - loss: %.4g", digits, (long long)done, (long long)samples_,
               bar(done, samples_).c_str(), duration(eta).c_str(), running_loss);
  (void)steps;
  std::fflush(out_);
}

std::string Progress::end_epoch(double loss, double val_loss, int64_t steps) {
  const double s = epoch_seconds();
  char line[256];
  std::snprintf(line, sizeof line, "%lld/%lld %s - %s %.0fms/step - loss: %.4g%s", (long long)samples_,
                (long long)samples_, bar(samples_, samples_).c_str(), duration(s).c_str(),
                steps > 0 ? 1000.0 * s / double(steps) : 0.0, loss,
                std::isnan(val_loss) ? "" : (" - val_loss: " + [&] {
                  char v[32];
                  std::snprintf(v, sizeof v, "%.4g", val_loss);
                  return std::string(v);
                }()).c_str());
  if (out_) std::fprintf(out_, "%s%s\n", interactive_ ? "\r\033[K" : "", line), std::fflush(out_);
  return line;
}

}  // namespace mriae
