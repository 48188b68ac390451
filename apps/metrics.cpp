#include "apps/metrics.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace mriae {

double mean_squared_error(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return s / double(n);
}

double psnr_from_mse(double mse, double peak) {
  return mse > 0 ? 20.0 * std::log10(peak / std::sqrt(mse)) : std::numeric_limits<double>::infinity();
}

double ssim(const float* x, const float* y, int h, int w, double data_range) {
  constexpr int kWin = 11;
  constexpr double kSigma = 1.5;
  if (h < kWin || w < kWin) throw std::invalid_argument("ssim: images must be at least 11x11");
  double g[kWin], total = 0;
  for (int i = 0; i < kWin; ++i) total += g[i] = std::exp(-0.5 * (i - 5) * (i - 5) / (kSigma * kSigma));
  for (double& v : g) v /= total;
  const double c1 = (0.01 * data_range) * (0.01 * data_range), c2 = (0.03 * data_range) * (0.03 * data_range);
  // The window is separable: filter rows into five moment images, then columns at each valid position.
  const int ow = w - kWin + 1, oh = h - kWin + 1;
  std::vector<double> rows(size_t(5) * h * ow);
  auto at = [&](int m, int r, int c) -> double& { return rows[(size_t(m) * h + r) * ow + c]; };
  for (int r = 0; r < h; ++r)
    for (int c = 0; c < ow; ++c) {
      double mx = 0, my = 0, xx = 0, yy = 0, xy = 0;
      for (int k = 0; k < kWin; ++k) {
        const double a = x[size_t(r) * w + c + k], b = y[size_t(r) * w + c + k];
        mx += g[k] * a, my += g[k] * b, xx += g[k] * a * a, yy += g[k] * b * b, xy += g[k] * a * b;
      }
      at(0, r, c) = mx, at(1, r, c) = my, at(2, r, c) = xx, at(3, r, c) = yy, at(4, r, c) = xy;
    }
  double sum = 0;
  for (int r = 0; r < oh; ++r)
    for (int c = 0; c < ow; ++c) {
      double m[5] = {0, 0, 0, 0, 0};
      for (int k = 0; k < kWin; ++k)
        for (int q = 0; q < 5; ++q) m[q] += g[k] * at(q, r + k, c);
      const double vx = m[2] - m[0] * m[0], vy = m[3] - m[1] * m[1], cxy = m[4] - m[0] * m[1];
      sum += ((2 * m[0] * m[1] + c1) * (2 * cxy + c2)) / ((m[0] * m[0] + m[1] * m[1] + c1) * (vx + vy + c2));
    }
  return sum / (double(oh) * ow);
}

}  // namespace mriae
