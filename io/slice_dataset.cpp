#include "io/slice_dataset.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace mriae::io {

namespace {

void check_axis(int axis) {
  if (axis < 0 || axis > 2) throw std::invalid_argument("slice axis " + std::to_string(axis) + " is not 0, 1 or 2");
}

// A volume's selected slices before normalisation and padding: count x rows x cols.
struct RawSlices {
  SubjectInfo info;
  std::vector<float> values;
};

RawSlices take_slices(const std::string& path, const DatasetOptions& opt) {
  ReadOptions read;
  read.frame = opt.frame;
  Volume vol = read_volume(path, read);
  std::string conform_warning;
  if (opt.conform) {
    ConformedVolume c = conform_volume(vol, *opt.conform);
    conform_warning = std::move(c.warning);
    vol.dims = c.volume.dims;
    vol.data = std::move(c.volume.data);  // the header stays the input's
  }

  // Constant or non-finite data cannot be min-max normalised, and either means a broken input; say so
  // per file rather than let NaNs spread through training.
  int64_t non_finite = 0;
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (float x : vol.data) {
    if (!std::isfinite(x)) {
      ++non_finite;
      continue;
    }
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  if (non_finite)
    throw DatasetError(path + ": " + std::to_string(non_finite) + " voxels are NaN or infinite");
  if (!(hi > lo))
    throw DatasetError(path + ": the volume is constant (every voxel is " + std::to_string(lo) +
                             "), so it cannot be min-max normalised");

  const int64_t n = vol.dims[size_t(opt.axis)];
  SliceRange r;
  if (opt.range) {
    r = *opt.range;
    if (r.start < 0 || r.stop > n || r.start >= r.stop)
      throw DatasetError(path + ": slice range " + std::to_string(r.start) + ":" + std::to_string(r.stop) +
                               " is outside the volume's " + std::to_string(n) + " slices along axis " +
                               std::to_string(opt.axis));
  } else {
    if (opt.central_count < 1 || opt.central_count > n)
      throw DatasetError(path + ": the central " + std::to_string(opt.central_count) +
                               " slices were asked for, but the volume has " + std::to_string(n) +
                               " slices along axis " + std::to_string(opt.axis));
    r = central_range(n, opt.central_count);
  }

  RawSlices raw;
  const auto shape = slice_shape(vol.dims, opt.axis);
  raw.info.path = path;
  raw.info.dims = vol.dims;
  raw.info.range = r;
  raw.info.height = shape[0];
  raw.info.width = shape[1];
  raw.info.min = lo;
  raw.info.max = hi;
  const int64_t per_slice = shape[0] * shape[1];
  raw.values.resize(size_t(r.size() * per_slice));
  for (int64_t s = r.start; s < r.stop; ++s)
    extract_slice(vol, opt.axis, s, raw.values.data() + (s - r.start) * per_slice);
  raw.info.header = vol.header;
  raw.info.conform_warning = std::move(conform_warning);
  if (!is_global(opt.normalize))
    raw.info.scaling = volume_normalisation(path, vol.data.data(), int64_t(vol.data.size()), opt.normalize, opt.percentiles);
  return raw;
}

}  // namespace

SliceRange central_range(int64_t n, int64_t count) {
  if (count < 1 || count > n)
    throw std::invalid_argument("central " + std::to_string(count) + " of " + std::to_string(n) + " slices");
  const int64_t start = (n - count) / 2;
  return {start, start + count};
}

SliceRange parse_slice_range(const std::string& text) {
  const auto colon = text.find(':');
  auto parse = [&](const std::string& part) -> int64_t {
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (part.empty() || used != part.size())
      throw std::invalid_argument("slice range '" + text + "' is not start:stop (two integers)");
    return v;
  };
  if (colon == std::string::npos) throw std::invalid_argument("slice range '" + text + "' is not start:stop");
  SliceRange r{parse(text.substr(0, colon)), parse(text.substr(colon + 1))};
  if (r.start < 0 || r.stop <= r.start)
    throw std::invalid_argument("slice range '" + text + "' must have 0 <= start < stop");
  return r;
}

int64_t padded_size(int64_t n, int64_t multiple) {
  if (multiple < 1) throw std::invalid_argument("pad multiple " + std::to_string(multiple));
  return (n + multiple - 1) / multiple * multiple;
}

int64_t pad_before(int64_t n, int64_t padded, PadPlacement placement) {
  if (padded < n) throw std::invalid_argument("padding " + std::to_string(n) + " to " + std::to_string(padded));
  return placement == PadPlacement::TopLeft ? padded - n : (padded - n) / 2;
}

std::array<int64_t, 2> slice_shape(const std::array<int64_t, 3>& dims, int axis) {
  check_axis(axis);
  switch (axis) {
    case 0: return {dims[1], dims[2]};
    case 1: return {dims[0], dims[2]};
    default: return {dims[0], dims[1]};
  }
}

void extract_slice(const Volume& v, int axis, int64_t index, float* dst) {
  check_axis(axis);
  if (index < 0 || index >= v.dims[size_t(axis)])
    throw std::out_of_range(v.path + ": slice " + std::to_string(index) + " along axis " + std::to_string(axis) +
                            " of " + std::to_string(v.dims[size_t(axis)]));
  const auto [rows, cols] = slice_shape(v.dims, axis);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      float x;
      switch (axis) {
        case 0: x = v.at(index, r, c); break;
        case 1: x = v.at(r, index, c); break;
        default: x = v.at(r, c, index); break;
      }
      dst[r * cols + c] = x;
    }
}

SliceDataset build_slice_dataset(const std::vector<std::string>& paths, const DatasetOptions& opt) {
  check_axis(opt.axis);
  if (paths.empty()) throw std::invalid_argument("no input volumes");
  if (paths.size() > size_t(std::numeric_limits<int32_t>::max())) throw std::invalid_argument("too many volumes");

  // Volumes are read one at a time and only their selected slices kept, so peak memory is one volume plus
  // the raw slices, not every volume at once.
  std::vector<RawSlices> raw;
  raw.reserve(paths.size());
  int64_t total = 0, max_h = 0, max_w = 0;
  for (const std::string& p : paths) {
    raw.push_back(take_slices(p, opt));
    total += raw.back().info.range.size();
    max_h = std::max(max_h, raw.back().info.height);
    max_w = std::max(max_w, raw.back().info.width);
  }

  SliceDataset ds;
  ds.axis = opt.axis;
  std::vector<int32_t> subject_of;
  subject_of.reserve(size_t(total));
  for (size_t s = 0; s < raw.size(); ++s) {
    raw[s].info.first_slice = int64_t(subject_of.size());
    for (int64_t j = raw[s].info.range.start; j < raw[s].info.range.stop; ++j) {
      subject_of.push_back(int32_t(s));
      ds.refs.push_back({int32_t(s), j});
    }
  }
  ds.split = split_dataset(subject_of, int32_t(raw.size()), opt.split);

  ds.method = opt.normalize;
  if (!is_global(opt.normalize)) {
    if (opt.normalisation)
      throw std::invalid_argument("a fixed normalisation range was given with the per-volume method '" +
                                  method_name(opt.normalize) + "'");
  } else if (opt.normalisation) {
    ds.normalisation = *opt.normalisation;
    if (!(ds.normalisation.max > ds.normalisation.min) || !std::isfinite(ds.normalisation.min) ||
        !std::isfinite(ds.normalisation.max))
      throw std::invalid_argument("normalisation range [" + std::to_string(ds.normalisation.min) + ", " +
                                  std::to_string(ds.normalisation.max) + "] is empty or not finite");
  } else {
    const bool all = opt.normalize == NormalizeMethod::All;
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    auto include = [&](int64_t n) {
      const RawSlices& r = raw[size_t(subject_of[size_t(n)])];
      const int64_t per = r.info.height * r.info.width;
      const float* x = r.values.data() + (n - r.info.first_slice) * per;
      for (int64_t i = 0; i < per; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
      }
    };
    if (all) {
      for (int64_t n = 0; n < total; ++n) include(n);
    } else {
      for (int64_t n : ds.split.train) include(n);
    }
    if (!(hi > lo))
      throw DatasetError(std::string("the ") + (all ? "selected" : "training") +
                               " slices are constant (every value is " + std::to_string(lo) +
                               "), so they cannot be min-max normalised");
    ds.normalisation = {lo, hi};
  }
  if (is_global(opt.normalize))
    for (RawSlices& r : raw) r.info.scaling = ds.normalisation;

  const int64_t H = padded_size(max_h, opt.pad_multiple), W = padded_size(max_w, opt.pad_multiple);
  ds.slices = SliceStack(total, H, W);  // zero-filled: the padding
  for (RawSlices& r : raw) {
    SubjectInfo& info = r.info;
    info.pad_top = pad_before(info.height, H, opt.pad);
    info.pad_left = pad_before(info.width, W, opt.pad);
    const int64_t per = info.height * info.width;
    for (int64_t s = 0; s < info.range.size(); ++s) {
      const float* src = r.values.data() + s * per;
      float* dst = ds.slices.slice(info.first_slice + s);
      for (int64_t y = 0; y < info.height; ++y)
        for (int64_t x = 0; x < info.width; ++x) {
          const float v = info.scaling.apply(src[y * info.width + x]);
          info.range_check.add(v);
          dst[(y + info.pad_top) * W + x + info.pad_left] = v;
        }
    }
    std::vector<float>().swap(r.values);  // free as we go
    if (!info.conform_warning.empty()) ds.warnings.push_back(info.conform_warning);
    ds.subjects.push_back(std::move(info));
  }
  return ds;
}

}  // namespace mriae::io
