#pragma once
// Central finite differences in double precision for the CPU kernels' backward passes.
#include <cmath>
#include <functional>
#include <vector>

#include "engine/random.h"

namespace mriae::test {

inline std::vector<double> random_vector(Rng& rng, size_t n, double lo = -1, double hi = 1) {
  std::vector<double> v(n);
  for (double& x : v) x = rng.uniform(lo, hi);
  return v;
}

// d/dv[i] of f at v, by (f(v + h e_i) - f(v - h e_i)) / 2h; f reads v.
inline double central_difference(const std::function<double()>& f, std::vector<double>& v, size_t i, double h) {
  const double keep = v[i];
  v[i] = keep + h;
  const double plus = f();
  v[i] = keep - h;
  const double minus = f();
  v[i] = keep;
  return (plus - minus) / (2 * h);
}

// The central difference for every i.
inline std::vector<double> numeric_gradient(const std::function<double()>& f, std::vector<double>& v, double h = 1e-6) {
  std::vector<double> g(v.size());
  for (size_t i = 0; i < v.size(); ++i) g[i] = central_difference(f, v, i, h);
  return g;
}

double relative_l2(const std::vector<double>& a, const std::vector<double>& b);

// The same at `count` positions drawn from rng (all positions if count >= v.size()); returns the positions.
inline std::vector<size_t> sample_positions(Rng& rng, size_t n, size_t count) {
  std::vector<size_t> idx;
  if (count >= n) {
    for (size_t i = 0; i < n; ++i) idx.push_back(i);
  } else {
    for (size_t i = 0; i < count; ++i) idx.push_back(size_t(rng.next_u64() % n));
  }
  return idx;
}

// Relative L2 error of the analytic gradient `analytic` against central differences at `positions`.
inline double sampled_error(const std::function<double()>& f, std::vector<double>& v, const std::vector<double>& analytic,
                            const std::vector<size_t>& positions, double h = 1e-6) {
  std::vector<double> a, num;
  for (size_t i : positions) {
    num.push_back(central_difference(f, v, i, h));
    a.push_back(analytic[i]);
  }
  return relative_l2(a, num);
}

// ||a - b|| / max(||b||, tiny): a scale-free error that a single bad element cannot hide in.
inline double relative_l2(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace mriae::test
