#include "io/orientation.h"

#include <cmath>
#include <stdexcept>
#include <vector>

namespace mriae::io {

namespace {

using Mat3 = std::array<std::array<double, 3>, 3>;

double det3(const Mat3& m) {
  return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
         m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}

// The inverse transpose of a nonsingular 3x3 matrix (the cofactor matrix over the determinant).
Mat3 inverse_transpose(const Mat3& m, double det) {
  Mat3 c{};
  for (int r = 0; r < 3; ++r)
    for (int k = 0; k < 3; ++k) {
      const int r1 = (r + 1) % 3, r2 = (r + 2) % 3, k1 = (k + 1) % 3, k2 = (k + 2) % 3;
      c[size_t(r)][size_t(k)] = (m[size_t(r1)][size_t(k1)] * m[size_t(r2)][size_t(k2)] -
                                 m[size_t(r1)][size_t(k2)] * m[size_t(r2)][size_t(k1)]) / det;
    }
  return c;
}

// The orthogonal polar factor of a nonsingular matrix, U V^T for its SVD U S V^T (what nibabel computes with
// numpy's SVD), by Newton's iteration X <- (X + X^-T) / 2, which converges quadratically to it.
Mat3 orthogonal_polar_factor(Mat3 x) {
  for (int it = 0; it < 100; ++it) {
    const double d = det3(x);
    const Mat3 xit = inverse_transpose(x, d);
    double change = 0;
    for (size_t r = 0; r < 3; ++r)
      for (size_t c = 0; c < 3; ++c) {
        const double next = 0.5 * (x[r][c] + xit[r][c]);
        change = std::max(change, std::abs(next - x[r][c]));
        x[r][c] = next;
      }
    if (change < 1e-15) break;
  }
  return x;
}

}  // namespace

Affine identity_affine() {
  Affine a{};
  for (size_t i = 0; i < 4; ++i) a[i][i] = 1;
  return a;
}

Affine multiply(const Affine& a, const Affine& b) {
  Affine c{};
  for (size_t r = 0; r < 4; ++r)
    for (size_t k = 0; k < 4; ++k) {
      double s = 0;
      for (size_t j = 0; j < 4; ++j) s += a[r][j] * b[j][k];
      c[r][k] = s;
    }
  return c;
}

Affine inverse(const Affine& a) {
  Mat3 m{};
  for (size_t r = 0; r < 3; ++r)
    for (size_t c = 0; c < 3; ++c) m[r][c] = a[r][c];
  const double d = det3(m);
  double scale = 0;
  for (auto& row : m)
    for (double v : row) scale = std::max(scale, std::abs(v));
  if (!std::isfinite(d) || std::abs(d) <= 1e-12 * scale * scale * scale)
    throw std::invalid_argument("the affine's 3x3 part is singular or not finite");
  const Mat3 it = inverse_transpose(m, d);
  Affine inv{};
  for (size_t r = 0; r < 3; ++r) {
    for (size_t c = 0; c < 3; ++c) inv[r][c] = it[c][r];
    inv[r][3] = -(inv[r][0] * a[0][3] + inv[r][1] * a[1][3] + inv[r][2] * a[2][3]);
  }
  inv[3][3] = 1;
  return inv;
}

std::array<double, 3> apply(const Affine& a, const std::array<double, 3>& p) {
  std::array<double, 3> q{};
  for (size_t r = 0; r < 3; ++r) q[r] = a[r][0] * p[0] + a[r][1] * p[1] + a[r][2] * p[2] + a[r][3];
  return q;
}

std::optional<CodedAffine> best_affine(const NiftiHeader& h) {
  // ANALYZE 7.5 has neither form (niftilib reports codes 0 for it).
  if (h.sform_code != 0) return CodedAffine{h.sto_xyz, true, h.sform_code};
  if (h.qform_code != 0) return CodedAffine{h.qto_xyz, false, h.qform_code};
  return std::nullopt;
}

bool AxisOrientationMap::is_identity() const {
  for (int a = 0; a < 3; ++a)
    if (out_axis[size_t(a)] != a || flip[size_t(a)] != 1) return false;
  return true;
}

AxisOrientationMap io_orientation(const Affine& affine) {
  Mat3 rs{};
  for (size_t c = 0; c < 3; ++c) {
    double zoom = 0;
    for (size_t r = 0; r < 3; ++r) zoom += affine[r][c] * affine[r][c];
    zoom = std::sqrt(zoom);
    if (!std::isfinite(zoom)) throw std::invalid_argument("the affine is not finite");
    if (zoom == 0)
      throw std::invalid_argument("voxel axis " + std::to_string(c) + " has zero length in the affine");
    for (size_t r = 0; r < 3; ++r) rs[r][c] = affine[r][c] / zoom;
  }
  // Columns of unit length: |det| is 1 for an orthogonal matrix and near 0 for a nearly degenerate one, where
  // nibabel's rank threshold (machine epsilon) and any other would disagree about which axes exist.
  if (std::abs(det3(rs)) < 1e-6) throw std::invalid_argument("the affine's 3x3 part is singular");
  Mat3 r = orthogonal_polar_factor(rs);

  AxisOrientationMap o;
  for (size_t in = 0; in < 3; ++in) {
    size_t best = 0;
    for (size_t out = 1; out < 3; ++out)
      if (std::abs(r[out][in]) > std::abs(r[best][in])) best = out;  // the first of equals, as numpy's argmax
    o.out_axis[in] = int(best);
    o.flip[in] = r[best][in] < 0 ? -1 : 1;
    for (size_t c = 0; c < 3; ++c) r[best][c] = 0;  // each world axis once
  }
  return o;
}

std::string axis_codes(const AxisOrientationMap& o) {
  static const char* const kLabels[3][2] = {{"L", "R"}, {"P", "A"}, {"I", "S"}};
  std::string s;
  for (size_t a = 0; a < 3; ++a) s += kLabels[o.out_axis[a]][o.flip[a] > 0 ? 1 : 0];
  return s;
}

std::string axis_codes(const Affine& affine) { return axis_codes(io_orientation(affine)); }

Affine inverse_orientation_affine(const AxisOrientationMap& o, const std::array<int64_t, 3>& dims) {
  // nibabel: undo_flip . undo_reorder, where undo_reorder = eye(4)[[out_axis..., 3], :].
  Affine reorder{};
  for (size_t r = 0; r < 3; ++r) reorder[r][size_t(o.out_axis[r])] = 1;
  reorder[3][3] = 1;
  Affine flip = identity_affine();
  for (size_t a = 0; a < 3; ++a) {
    flip[a][a] = o.flip[a];
    const double centre = -(double(dims[a]) - 1) / 2.0;
    flip[a][3] = o.flip[a] * centre - centre;
  }
  return multiply(flip, reorder);
}

std::vector<float> apply_orientation(const std::vector<float>& data, const std::array<int64_t, 3>& dims,
                                     const AxisOrientationMap& o, std::array<int64_t, 3>* out_dims) {
  std::array<bool, 3> used{};
  for (int a : o.out_axis) {
    if (a < 0 || a > 2 || used[size_t(a)]) throw std::invalid_argument("apply_orientation: not a permutation");
    used[size_t(a)] = true;
  }
  if (int64_t(data.size()) != dims[0] * dims[1] * dims[2])
    throw std::invalid_argument("apply_orientation: data and dims disagree");
  std::array<int64_t, 3> nd{};
  for (size_t a = 0; a < 3; ++a) nd[size_t(o.out_axis[a])] = dims[a];
  // Output strides of each input axis, and where input index 0 lands along it.
  std::array<int64_t, 3> out_stride{1, nd[0], nd[0] * nd[1]};
  std::array<int64_t, 3> step{}, origin{};
  for (size_t a = 0; a < 3; ++a) {
    const int64_t s = out_stride[size_t(o.out_axis[a])];
    step[a] = o.flip[a] < 0 ? -s : s;
    origin[a] = o.flip[a] < 0 ? (dims[a] - 1) * s : 0;
  }
  std::vector<float> out(data.size());
  size_t n = 0;
  for (int64_t k = 0; k < dims[2]; ++k)
    for (int64_t j = 0; j < dims[1]; ++j) {
      const int64_t base = origin[0] + origin[1] + origin[2] + j * step[1] + k * step[2];
      for (int64_t i = 0; i < dims[0]; ++i) out[size_t(base + i * step[0])] = data[n++];
    }
  if (out_dims) *out_dims = nd;
  return out;
}

CanonicalVolume as_closest_canonical(const std::vector<float>& data, const std::array<int64_t, 3>& dims,
                                     const Affine& affine) {
  CanonicalVolume c;
  c.orientation = io_orientation(affine);
  if (c.orientation.is_identity()) {  // nibabel returns the image itself
    c.dims = dims;
    c.data = data;
    c.affine = affine;
    return c;
  }
  c.data = apply_orientation(data, dims, c.orientation, &c.dims);
  c.affine = multiply(affine, inverse_orientation_affine(c.orientation, dims));
  return c;
}

}  // namespace mriae::io
