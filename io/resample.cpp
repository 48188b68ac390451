#include "io/resample.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace mriae::io {

namespace {

// Points this close outside [0, n - 1] are taken as on the edge.
constexpr double kEdge = 1e-6;

}  // namespace

Interpolation parse_interpolation(const std::string& name) {
  if (name == "linear") return Interpolation::Linear;
  if (name == "nearest") return Interpolation::Nearest;
  throw std::invalid_argument("interpolation must be 'linear' or 'nearest', not '" + name + "'");
}

std::string interpolation_name(Interpolation i) { return i == Interpolation::Linear ? "linear" : "nearest"; }

Grid output_grid(const Grid& in, double voxel) {
  if (!(voxel > 0) || !std::isfinite(voxel))
    throw std::invalid_argument("voxel size must be a positive number of mm, not " + std::to_string(voxel));
  std::array<double, 3> lo{}, hi{};
  lo.fill(INFINITY);
  hi.fill(-INFINITY);
  for (int corner = 0; corner < 8; ++corner) {
    std::array<double, 3> p{};
    for (size_t a = 0; a < 3; ++a) p[a] = (corner >> a) & 1 ? double(in.dims[a] - 1) : 0.0;
    const auto w = apply(in.affine, p);
    for (size_t a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], w[a]);
      hi[a] = std::max(hi[a], w[a]);
    }
  }
  Grid out;
  out.affine = identity_affine();
  for (size_t a = 0; a < 3; ++a) {
    const double n = std::ceil((hi[a] - lo[a]) / voxel) + 1;
    if (!std::isfinite(n) || n > double(int64_t(1) << 20))
      throw std::invalid_argument("the output grid at " + std::to_string(voxel) + " mm would have " +
                                  std::to_string(n) + " voxels along world axis " + std::to_string(a));
    out.dims[a] = int64_t(n);
    out.affine[a][a] = voxel;
    out.affine[a][3] = lo[a];
  }
  return out;
}

std::vector<float> resample(const std::vector<float>& data, const Grid& from, const Grid& to,
                            Interpolation interp) {
  const std::array<int64_t, 3>& n = from.dims;
  if (int64_t(data.size()) != n[0] * n[1] * n[2]) throw std::invalid_argument("resample: data and dims disagree");
  const Affine m = multiply(inverse(from.affine), to.affine);  // output voxel -> input voxel
  std::vector<float> out(size_t(to.dims[0] * to.dims[1] * to.dims[2]), 0.0f);
  const int64_t sy = n[0], sz = n[0] * n[1];
  size_t o = 0;
  for (int64_t k = 0; k < to.dims[2]; ++k)
    for (int64_t j = 0; j < to.dims[1]; ++j)
      for (int64_t i = 0; i < to.dims[0]; ++i, ++o) {
        double c[3];
        bool inside = true;
        for (size_t a = 0; a < 3; ++a) {
          double x = m[a][0] * double(i) + m[a][1] * double(j) + m[a][2] * double(k) + m[a][3];
          const double top = double(n[a] - 1);
          if (x < 0 && x >= -kEdge) x = 0;
          if (x > top && x <= top + kEdge) x = top;
          if (!(x >= 0 && x <= top)) inside = false;  // NaN too
          c[a] = x;
        }
        if (!inside) continue;
        if (interp == Interpolation::Nearest) {
          const int64_t x = int64_t(std::floor(c[0] + 0.5)), y = int64_t(std::floor(c[1] + 0.5)),
                        z = int64_t(std::floor(c[2] + 0.5));
          out[o] = data[size_t(x + sy * y + sz * z)];
          continue;
        }
        int64_t b[3], step[3];
        double f[3];
        const int64_t stride[3] = {1, sy, sz};
        for (size_t a = 0; a < 3; ++a) {
          b[a] = std::min(int64_t(std::floor(c[a])), n[a] - 1);
          f[a] = c[a] - double(b[a]);
          step[a] = b[a] + 1 < n[a] ? stride[a] : 0;  // at the last voxel the second weight is 0
        }
        const float* p = data.data() + (b[0] + sy * b[1] + sz * b[2]);
        double v = 0;
        for (int corner = 0; corner < 8; ++corner) {
          double w = 1;
          int64_t off = 0;
          for (size_t a = 0; a < 3; ++a) {
            const bool up = (corner >> a) & 1;
            w *= up ? f[a] : 1 - f[a];
            if (up) off += step[a];
          }
          if (w != 0) v += w * double(p[off]);
        }
        out[o] = float(v);
      }
  return out;
}

}  // namespace mriae::io
