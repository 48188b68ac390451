#include "apps/reconstruction.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "apps/run_config.h"
#include "io/nifti_writer.h"

namespace mriae {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Index of pixel (r, c) of slice `index` along `axis` in an x-fastest volume (io::slice_shape's layout).
int64_t voxel_index(int axis, int64_t index, int64_t r, int64_t c, const std::array<int64_t, 3>& dims) {
  switch (axis) {
    case 0: return index + dims[0] * (r + dims[1] * c);
    case 1: return r + dims[0] * (index + dims[1] * c);
    default: return r + dims[0] * (c + dims[1] * index);
  }
}

}  // namespace

void ReconstructOptions::validate() const {
  if (weights.empty()) throw std::invalid_argument("--weights: no checkpoint given");
  if (input.empty()) throw std::invalid_argument("--in: no input volume given");
  if (output.empty()) throw std::invalid_argument("--out: no output file given");
  if (frame && *frame < 0) throw std::invalid_argument("--frame must be 0 or more, not " + std::to_string(*frame));
  if (batch <= 0) throw std::invalid_argument("--batch must be positive");
  if (device != "auto" && device != "cpu" && device != "cuda")
    throw std::invalid_argument("--device must be auto, cpu or cuda, not '" + device + "'");
  if (dtype != "float32" && dtype != "float64")
    throw std::invalid_argument("--dtype must be float32 or float64, not '" + dtype + "'");
}

SlicePipeline pipeline_from_metadata(const CheckpointMetadata& metadata) {
  const io::DatasetOptions d = dataset_options_from_metadata(metadata);
  if (d.axis < 0 || d.axis > 2)
    throw std::runtime_error("the checkpoint's slice axis " + std::to_string(d.axis) + " is not 0, 1 or 2");
  SlicePipeline p;
  p.axis = d.axis;
  p.method = d.normalize;
  p.percentiles = d.percentiles;
  p.trained = d.normalisation;
  p.pad = d.pad;
  p.pad_multiple = d.pad_multiple;
  p.conform = d.conform;
  return p;
}

io::Normalisation volume_scaling(const io::Volume& volume, const SlicePipeline& p) {
  if (io::is_global(p.method)) {
    if (!p.trained) throw std::logic_error("the global normalisation '" + io::method_name(p.method) + "' without its range");
    return *p.trained;
  }
  return io::volume_normalisation(volume.path, volume.data.data(), int64_t(volume.data.size()), p.method, p.percentiles);
}

void store_slice(const float* slice, int axis, int64_t index, const std::array<int64_t, 3>& dims, float* volume) {
  if (index < 0 || index >= dims[size_t(axis)])
    throw std::out_of_range("store_slice: slice " + std::to_string(index) + " along axis " + std::to_string(axis));
  const auto [rows, cols] = io::slice_shape(dims, axis);  // checks the axis
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) volume[voxel_index(axis, index, r, c, dims)] = slice[r * cols + c];
}

Reconstruction reconstruct_volume(Autoencoder& model, const io::Volume& volume, const SlicePipeline& p) {
  return reconstruct_volume(model, volume, p, volume_scaling(volume, p));
}

Reconstruction reconstruct_volume(Autoencoder& model, const io::Volume& volume, const SlicePipeline& p,
                                  const io::Normalisation& norm) {
  if (p.batch <= 0) throw std::invalid_argument("reconstruct_volume: batch " + std::to_string(p.batch));
  const auto [rows, cols] = io::slice_shape(volume.dims, p.axis);
  const int64_t H = io::padded_size(rows, p.pad_multiple), W = io::padded_size(cols, p.pad_multiple);
  const int64_t top = io::pad_before(rows, H, p.pad), left = io::pad_before(cols, W, p.pad);
  const int64_t n = volume.dims[size_t(p.axis)];
  const Device device = model.config().device;

  Reconstruction out;
  out.scaling = norm;
  out.data.assign(volume.data.size(), 0.0f);
  std::vector<float> in_slice(size_t(rows * cols)), out_slice(size_t(rows * cols));
  double sq_sum = 0;
  for (int64_t first = 0; first < n; first += p.batch) {
    const int64_t count = std::min(p.batch, n - first);
    Tensor x = Tensor::zeros({count, 1, H, W});  // the zeros are the padding, as in training
    // The normalised input is kept beside the batch for the error, which is measured where the data is.
    std::vector<float> normalised(size_t(count * rows * cols));
    for (int64_t s = 0; s < count; ++s) {
      io::extract_slice(volume, p.axis, first + s, in_slice.data());
      float* dst = x.data() + s * H * W;
      float* kept = normalised.data() + s * rows * cols;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          kept[r * cols + c] = dst[(r + top) * W + c + left] = norm.apply(in_slice[size_t(r * cols + c)]);
          out.range_check.add(kept[r * cols + c]);
        }
    }
    const Var y = model.forward(nullptr, Var(model.input(x)), false);
    // A float64 model's output is rounded to float32 here, the type of the volume written out.
    const Tensor result = (device == Device::CPU ? y.value() : y.value().to(Device::CPU)).to(DType::Float32);
    for (int64_t s = 0; s < count; ++s) {
      const float* src = result.data() + s * H * W;
      const float* kept = normalised.data() + s * rows * cols;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          const float v = src[(r + top) * W + c + left];
          const double e = double(v) - double(kept[r * cols + c]);
          sq_sum += e * e;
          out_slice[size_t(r * cols + c)] = norm.invert(v);
        }
      store_slice(out_slice.data(), p.axis, first + s, volume.dims, out.data.data());
    }
  }
  out.mse_normalised = sq_sum / double(volume.data.size());
  return out;
}

ReconstructResult reconstruct(const ReconstructOptions& options) {
  const Clock::time_point start = Clock::now();
  options.validate();
  io::check_output_path(options.output);  // before minutes of work, not after
  const DType dtype = parse_dtype(options.dtype);
  const Device device = resolve_device(options.device, dtype);

  AutoencoderConfig mc;
  mc.device = device;
  mc.dtype = dtype;
  Autoencoder model(mc);
  SlicePipeline pipeline;
  {
    const CheckpointMetadata meta = load_weights(options.weights, model, options.keras);
    const std::string note = dtype_note(options.weights, meta, dtype);
    if (!note.empty()) std::fprintf(stderr, "mriae: note: %s\n", note.c_str());
    try {
      pipeline = pipeline_from_metadata(meta);
    } catch (const std::exception& e) {
      throw std::runtime_error(options.weights + ": " + e.what());
    }
  }
  pipeline.batch = options.batch;

  io::ReadOptions read;
  read.frame = options.frame;
  const io::Volume volume = io::read_volume(options.input, read);
  // Training refuses such volumes too; here a NaN would spread through every convolution it touches.
  const auto non_finite =
      std::count_if(volume.data.begin(), volume.data.end(), [](float v) { return !std::isfinite(v); });
  if (non_finite)
    throw io::DatasetError(options.input + ": " + std::to_string(non_finite) +
                           " voxels are NaN or infinite; the model cannot reconstruct them");
  ReconstructResult r;
  std::optional<io::ConformedVolume> conformed;
  if (pipeline.conform) {
    conformed = io::conform_volume(volume, *pipeline.conform);
    r.conformed = true;
    r.warning = conformed->warning;
  }
  // The model sees the conformed volume, so it is scaled as training scaled it: from the conformed voxels.
  const io::Volume& seen = conformed ? conformed->volume : volume;
  // Before minutes of work: a volume the model's scaling maps far outside [0, 1] gets a warning, or with
  // --strict an error.
  const io::Normalisation scaling = volume_scaling(seen, pipeline);
  {
    io::RangeCheck check;
    for (float v : seen.data) check.add(scaling.apply(v));
    const auto [lo, hi] = std::minmax_element(seen.data.begin(), seen.data.end());
    io::enforce_range(options.input, check, pipeline.method, scaling, *lo, *hi, options.strict, stderr);
  }
  const Clock::time_point model_start = Clock::now();
  Reconstruction rec = reconstruct_volume(model, seen, pipeline, scaling);
  r.model_seconds = seconds_since(model_start);
  if (conformed) rec.data = io::unconform(rec.data, *conformed, pipeline.conform->interpolation);

  io::NiftiHeader header = volume.header;
  header.descrip = "mriae reconstruction";
  io::write_volume(options.output, header, volume.dims, rec.data);

  double sq_sum = 0;
  for (size_t i = 0; i < rec.data.size(); ++i) {
    const double e = double(rec.data[i]) - double(volume.data[i]);
    sq_sum += e * e;
  }
  r.dims = seen.dims;
  r.axis = pipeline.axis;
  r.slices = seen.dims[size_t(pipeline.axis)];
  r.slice_size = io::slice_shape(seen.dims, pipeline.axis);
  r.padded_size = {io::padded_size(r.slice_size[0], pipeline.pad_multiple),
                   io::padded_size(r.slice_size[1], pipeline.pad_multiple)};
  r.device = device;
  r.mse_normalised = rec.mse_normalised;
  r.method = pipeline.method;
  r.scaling = rec.scaling;
  r.rmse = std::sqrt(sq_sum / double(rec.data.size()));
  r.seconds = seconds_since(start);
  return r;
}

std::string summary_line(const ReconstructResult& r, const std::string& output) {
  char buf[480];
  std::snprintf(buf, sizeof buf,
                "reconstructed %lld slices along axis %d%s (%lldx%lld, padded to %lldx%lld) on %s in %.2f s "
                "(model %.2f s): RMS error %.4g in intensity units, MSE %.4g normalised ('%s': %.6g .. %.6g%s "
                "mapped to [0, 1] and back); wrote ",
                (long long)r.slices, r.axis, r.conformed ? " of the conformed volume" : "", (long long)r.slice_size[0],
                (long long)r.slice_size[1],
                (long long)r.padded_size[0], (long long)r.padded_size[1], device_name(r.device), r.seconds,
                r.model_seconds, r.rmse, r.mse_normalised, io::method_name(r.method).c_str(), r.scaling.min,
                r.scaling.max, r.scaling.clip ? ", clipped," : "");
  return buf + output;
}

}  // namespace mriae
