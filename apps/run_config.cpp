#include "apps/run_config.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "io/subject_map.h"

namespace mriae {

namespace {

const std::string& get(const CheckpointMetadata& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) throw std::runtime_error("checkpoint metadata lacks '" + key + "' (not written by mriae train?)");
  return it->second;
}

}  // namespace

std::string exact(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string short_number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

void DataOptions::validate() const {
  if (paths.empty()) throw std::invalid_argument("--data: no input volume given");
  if (axis < 0 || axis > 2) throw std::invalid_argument("--axis must be 0, 1 or 2, not " + std::to_string(axis));
  if (central <= 0) throw std::invalid_argument("--central must be positive");
  io::parse_method(normalize);  // throw with their own messages
  io::parse_percentiles(percentiles);
  if (pad != "top-left" && pad != "centre")
    throw std::invalid_argument("--pad must be 'top-left' or 'centre', not '" + pad + "'");
  if (split != "slices" && split != "subjects")
    throw std::invalid_argument("--split must be 'slices' or 'subjects', not '" + split + "'");
  if (!(val_fraction > 0 && val_fraction < 1))
    throw std::invalid_argument("--val-fraction must lie strictly between 0 and 1, not " + exact(val_fraction));
  if (!slices.empty()) io::parse_slice_range(slices);  // throws with its own message
  if (!(voxel > 0) || !std::isfinite(voxel) || voxel > 100)
    throw std::invalid_argument("--voxel must be a voxel size in mm, more than 0 and at most 100, not " + exact(voxel));
  if (interp != "linear" && interp != "nearest")
    throw std::invalid_argument("--interp must be 'linear' or 'nearest', not '" + interp + "'");
  if (!subject_labels.empty() && subject_labels.size() != paths.size())
    throw std::invalid_argument("--subjects: " + std::to_string(subject_labels.size()) + " subject labels for " +
                                std::to_string(paths.size()) + " volumes");
}

std::optional<io::ConformOptions> DataOptions::conform_options() const {
  if (!conform) return std::nullopt;
  io::ConformOptions c;
  c.voxel = voxel;
  c.interpolation = io::parse_interpolation(interp);
  return c;
}

void DataOptions::resolve_subjects() {
  if (!subjects.empty() && subject_labels.empty()) subject_labels = io::read_subject_labels(subjects, paths);
}

io::DatasetOptions DataOptions::dataset_options() const {
  io::DatasetOptions o;
  o.axis = axis;
  if (!slices.empty()) o.range = io::parse_slice_range(slices);
  o.central_count = central;
  o.normalize = io::parse_method(normalize);
  o.percentiles = io::parse_percentiles(percentiles);
  o.pad = pad == "centre" ? io::PadPlacement::Centred : io::PadPlacement::TopLeft;
  o.split.mode = split == "subjects" ? io::SplitMode::Subjects : io::SplitMode::Slices;
  o.split.validation_fraction = val_fraction;
  o.split.seed = seed;
  o.conform = conform_options();
  o.split.volume_subject = io::subject_numbers(subject_labels);
  return o;
}

void TrainOptions::validate() const {
  data.validate();
  if (out_dir.empty()) throw std::invalid_argument("--out: no output folder given");
  if (epochs <= 0) throw std::invalid_argument("--epochs must be positive");
  if (batch <= 0) throw std::invalid_argument("--batch must be positive");
  schedule(1).validate();
  if (device != "auto" && device != "cpu" && device != "cuda")
    throw std::invalid_argument("--device must be auto, cpu or cuda, not '" + device + "'");
  if (dtype != "float32" && dtype != "float64")
    throw std::invalid_argument("--dtype must be float32 or float64, not '" + dtype + "'");
  if (bn != "global" && bn != "per-rank")
    throw std::invalid_argument("--bn must be 'global' or 'per-rank', not '" + bn + "'");
  if (!(train_noise >= 0) || !std::isfinite(train_noise))
    throw std::invalid_argument("--train-noise must be a noise sigma >= 0, not " + short_number(train_noise));
  if (crop < 0 || crop % 4)
    throw std::invalid_argument("--crop must be a multiple of 4 (the model pools twice by 2), not " +
                                std::to_string(crop));
  if (crops_per_slice < 0) throw std::invalid_argument("--crops-per-slice must be positive");
  if (crops_per_slice > 0 && crop == 0) throw std::invalid_argument("--crops-per-slice needs --crop");
}

LrSchedule TrainOptions::schedule(int64_t steps_per_epoch) const {
  LrSchedule s;
  s.kind = lr_schedule;
  s.lr = lr;
  s.floor = lr_floor;
  s.total_steps = epochs * steps_per_epoch;
  return s;
}

void put_data_metadata(CheckpointMetadata& m, const DataOptions& o, const io::SliceDataset& d) {
  m["data.paths"] = nlohmann::json(o.paths).dump();
  m["data.axis"] = std::to_string(o.axis);
  m["data.slices"] = o.slices;
  m["data.central"] = std::to_string(o.central);
  m["data.normalize"] = o.normalize;
  m["data.pad"] = o.pad;
  m["data.split"] = o.split;
  m["data.val_fraction"] = exact(o.val_fraction);
  m["data.seed"] = std::to_string(o.seed);
  m["data.conform"] = o.conform ? "1" : "0";
  m["data.voxel"] = exact(o.voxel);
  m["data.interp"] = o.interp;
  m["data.subjects"] = o.subjects;
  m["data.subject_labels"] = nlohmann::json(o.subject_labels).dump();
  m["data.height"] = std::to_string(d.slices.height());
  m["data.width"] = std::to_string(d.slices.width());
  if (d.method == io::NormalizeMethod::Percentile)
    m["data.percentiles"] = io::percentiles_text(io::parse_percentiles(o.percentiles));
  if (io::is_global(d.method)) {
    m["data.norm_min"] = exact(d.normalisation.min);
    m["data.norm_max"] = exact(d.normalisation.max);
  }
}

DataOptions data_options_from_metadata(const CheckpointMetadata& m) {
  DataOptions o;
  o.paths = nlohmann::json::parse(get(m, "data.paths")).get<std::vector<std::string>>();
  o.axis = std::stoi(get(m, "data.axis"));
  o.slices = get(m, "data.slices");
  o.central = std::stoll(get(m, "data.central"));
  o.normalize = get(m, "data.normalize");
  o.pad = get(m, "data.pad");
  o.split = get(m, "data.split");
  o.val_fraction = std::stod(get(m, "data.val_fraction"));
  o.seed = std::stoull(get(m, "data.seed"));
  // Absent from checkpoints written before conforming existed: those runs sliced the arrays as stored.
  const auto conform = m.find("data.conform");
  o.conform = conform != m.end() && conform->second == "1";
  if (o.conform) {
    o.voxel = std::stod(get(m, "data.voxel"));
    o.interp = get(m, "data.interp");
  }
  // Absent from checkpoints written before subjects could be grouped: every volume its own subject.
  if (auto it = m.find("data.subjects"); it != m.end()) o.subjects = it->second;
  if (auto it = m.find("data.subject_labels"); it != m.end())
    o.subject_labels = nlohmann::json::parse(it->second).get<std::vector<std::string>>();
  if (auto p = m.find("data.percentiles"); p != m.end()) o.percentiles = p->second;
  try {
    io::parse_method(o.normalize);
    io::parse_percentiles(o.percentiles);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("checkpoint metadata: ") + e.what());
  }
  return o;
}

std::optional<io::Normalisation> trained_normalisation(const CheckpointMetadata& m) {
  if (!io::is_global(io::parse_method(get(m, "data.normalize")))) return std::nullopt;
  io::Normalisation n;
  n.min = std::stof(get(m, "data.norm_min"));
  n.max = std::stof(get(m, "data.norm_max"));
  if (!(n.max > n.min) || !std::isfinite(n.min) || !std::isfinite(n.max))
    throw std::runtime_error("the checkpoint's normalisation range [" + exact(n.min) + ", " + exact(n.max) +
                             "] is empty or not finite");
  return n;
}

io::DatasetOptions dataset_options_from_metadata(const CheckpointMetadata& m) {
  io::DatasetOptions d = data_options_from_metadata(m).dataset_options();
  d.normalisation = trained_normalisation(m);
  return d;
}

void check_normalised_ranges(const io::SliceDataset& d, bool strict, std::FILE* console) {
  for (const io::SubjectInfo& s : d.subjects)
    io::enforce_range(s.path, s.range_check, d.method, s.scaling, s.min, s.max, strict, console);
}

}  // namespace mriae
