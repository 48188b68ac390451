#include "io/normalization.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace mriae::io {

namespace {

std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

std::string method_name(NormalizeMethod m) {
  switch (m) {
    case NormalizeMethod::Training: return "train";
    case NormalizeMethod::All: return "all";
    case NormalizeMethod::Volume: return "volume";
    case NormalizeMethod::Percentile: return "percentile";
  }
  throw std::logic_error("unknown normalisation method");
}

NormalizeMethod parse_method(const std::string& name) {
  for (NormalizeMethod m :
       {NormalizeMethod::Training, NormalizeMethod::All, NormalizeMethod::Volume, NormalizeMethod::Percentile})
    if (name == method_name(m)) return m;
  throw std::invalid_argument("--normalize must be 'volume', 'percentile', 'train' or 'all', not '" + name + "'");
}

bool is_global(NormalizeMethod m) { return m == NormalizeMethod::Training || m == NormalizeMethod::All; }

PercentileBounds parse_percentiles(const std::string& text) {
  const std::string why = "--percentiles must be two numbers LOW,HIGH with 0 <= LOW < HIGH <= 100 (e.g. 0.5,99.5), not '" +
                          text + "'";
  const auto comma = text.find(',');
  if (comma == std::string::npos) throw std::invalid_argument(why);
  auto parse = [&](const std::string& part) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(part, &used);
    } catch (const std::exception&) {
      throw std::invalid_argument(why);
    }
    if (used != part.size() || !std::isfinite(v)) throw std::invalid_argument(why);
    return v;
  };
  const PercentileBounds b{parse(text.substr(0, comma)), parse(text.substr(comma + 1))};
  if (!(b.lower >= 0 && b.lower < b.upper && b.upper <= 100)) throw std::invalid_argument(why);
  return b;
}

std::string percentiles_text(const PercentileBounds& b) {
  char buf[80];
  std::snprintf(buf, sizeof buf, "%.17g,%.17g", b.lower, b.upper);
  return buf;
}

double percentile(float* values, int64_t n, double percent) {
  if (n <= 0) throw std::invalid_argument("percentile of no values");
  // numpy's 'linear' rule: position p/100 * (n - 1) in the sorted values, interpolated between neighbours.
  const double pos = percent / 100.0 * double(n - 1);
  const int64_t below = std::clamp<int64_t>(int64_t(std::floor(pos)), 0, n - 1);
  std::nth_element(values, values + below, values + n);
  const double lo = values[below];
  if (below + 1 >= n) return lo;
  // After nth_element everything past `below` is >= it, so the next order statistic is their minimum.
  const double hi = *std::min_element(values + below + 1, values + n);
  return lo + (hi - lo) * (pos - double(below));
}

Normalisation volume_normalisation(const std::string& path, const float* values, int64_t n, NormalizeMethod method,
                                   const PercentileBounds& bounds) {
  if (is_global(method))
    throw std::invalid_argument("volume_normalisation: '" + method_name(method) + "' is not a per-volume method");
  if (n <= 0) throw DatasetError(path + ": no voxels to normalise");
  Normalisation s;
  if (method == NormalizeMethod::Volume) {
    const auto [lo, hi] = std::minmax_element(values, values + n);
    s = {*lo, *hi, false};
  } else {
    std::vector<float> copy(values, values + n);
    s.min = float(percentile(copy.data(), n, bounds.lower));
    s.max = float(percentile(copy.data(), n, bounds.upper));
    s.clip = true;
  }
  if (!(s.max > s.min))
    throw DatasetError(path + ": " +
                       (method == NormalizeMethod::Volume
                            ? "the volume is constant (every voxel is " + number(s.min) + ")"
                            : "its " + number(bounds.lower) + "th and " + number(bounds.upper) +
                                  "th percentiles are both " + number(s.min)) +
                       ", so it cannot be normalised by '" + method_name(method) + "'");
  return s;
}

void RangeCheck::add(float y) {
  if (voxels == 0) lowest = highest = y;
  ++voxels;
  lowest = std::min(lowest, y);
  highest = std::max(highest, y);
  below += y < kLow;
  above += y > kHigh;
}

std::string range_message(const std::string& path, const RangeCheck& c, NormalizeMethod method,
                          const Normalisation& scaling, float volume_min, float volume_max) {
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.1f%%", 100.0 * c.outside_fraction());
  std::string m = path + ": " + pct + " of its voxels normalise outside [" + number(RangeCheck::kLow) + ", " +
                  number(RangeCheck::kHigh) + "] (to " + number(c.lowest) + " .. " + number(c.highest) +
                  ") under the '" + method_name(method) + "' scaling, which maps " + number(scaling.min) + " .. " +
                  number(scaling.max) + " to [0, 1]; the volume's intensities run " + number(volume_min) + " .. " +
                  number(volume_max) + ".";
  if (is_global(method))
    m += " Its intensity range differs from the training data's: the model's output will be meaningless; train with "
         "--normalize volume or percentile to scale each volume by its own range";
  return m;
}

void enforce_range(const std::string& path, const RangeCheck& c, NormalizeMethod method, const Normalisation& scaling,
                   float volume_min, float volume_max, bool strict, std::FILE* warnings) {
  if (!c.suspicious()) return;
  const std::string m = range_message(path, c, method, scaling, volume_min, volume_max);
  if (strict) throw DatasetError(m + " (--strict)");
  if (warnings) std::fprintf(warnings, "mriae: warning: %s (--strict makes this an error)\n", m.c_str());
}

}  // namespace mriae::io
