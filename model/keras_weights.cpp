#include "model/keras_weights.h"

#include <hdf5.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <vector>

namespace mriae {

namespace {

namespace fs = std::filesystem;

// Owns one HDF5 identifier. A negative id (a failed call) is not closed.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(const Handle&) = delete;
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// HDF5 prints its error stack to stderr on every failed call by default; our own messages say what went
// wrong, so the printing is off for the duration of one read or write, and restored after.
class QuietErrors {
 public:
  QuietErrors() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietErrors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietErrors(const QuietErrors&) = delete;
  QuietErrors& operator=(const QuietErrors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// A dataset as read: its shape and values (converted to double by HDF5, exactly for float32 and float64).
struct Array {
  std::vector<int64_t> shape;
  std::vector<double> values;
  bool f64 = false;
};

// One layer with weights, as the file holds it, in the model's order.
struct FileLayer {
  std::string name;                       // for messages: the layer's group in the file
  std::vector<std::string> weight_names;  // the datasets' names, for messages
  std::vector<Array> weights;
};

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

// True when every component of the '/'-separated path exists below loc.
bool path_exists(hid_t loc, const std::string& path) {
  size_t pos = 0;
  while (true) {
    const size_t next = path.find('/', pos);
    const std::string prefix = path.substr(0, next);
    if (H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (next == std::string::npos) return true;
    pos = next + 1;
  }
}

bool is_group(hid_t loc, const std::string& path) {
  if (!path_exists(loc, path)) return false;
  H5O_info_t info;
  if (H5Oget_info_by_name(loc, path.c_str(), &info, H5P_DEFAULT) < 0) return false;
  return info.type == H5O_TYPE_GROUP;
}

// A string-array attribute (variable-length, as h5py writes str, or fixed-length, as numpy bytes arrays
// are). An empty attribute of any type (h5py writes an empty list as a float64 array of length 0) is an
// empty list.
std::vector<std::string> read_strings(hid_t obj, const char* name, const std::string& where) {
  if (H5Aexists(obj, name) <= 0) throw std::runtime_error(where + " has no attribute '" + name + "'");
  Handle a(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  if (!a.ok()) throw std::runtime_error("cannot open the attribute '" + std::string(name) + "' of " + where);
  Handle type(H5Aget_type(a.get()), H5Tclose);
  Handle space(H5Aget_space(a.get()), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0) throw std::runtime_error("cannot read the attribute '" + std::string(name) + "' of " + where);
  if (n == 0) return {};
  if (H5Tget_class(type.get()) != H5T_STRING)
    throw std::runtime_error("the attribute '" + std::string(name) + "' of " + where + " is not a list of strings");
  std::vector<std::string> out;
  if (H5Tis_variable_str(type.get()) > 0) {
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    std::vector<char*> p(size_t(n), nullptr);
    if (H5Aread(a.get(), mem.get(), p.data()) < 0)
      throw std::runtime_error("cannot read the attribute '" + std::string(name) + "' of " + where);
    for (char* s : p) {
      out.emplace_back(s ? s : "");
      H5free_memory(s);
    }
  } else {
    const size_t size = H5Tget_size(type.get());
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), size);
    H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
    std::vector<char> buf(size_t(n) * size);
    if (H5Aread(a.get(), mem.get(), buf.data()) < 0)
      throw std::runtime_error("cannot read the attribute '" + std::string(name) + "' of " + where);
    for (hssize_t i = 0; i < n; ++i) {
      const char* s = buf.data() + size_t(i) * size;
      out.emplace_back(s, strnlen(s, size));
    }
  }
  return out;
}

// The float dataset at `path` below loc. `where` names it in messages.
Array read_array(hid_t loc, const std::string& path, const std::string& where) {
  if (!path_exists(loc, path)) throw std::runtime_error("no dataset '" + path + "' in " + where);
  Handle d(H5Dopen2(loc, path.c_str(), H5P_DEFAULT), H5Dclose);
  if (!d.ok()) throw std::runtime_error("'" + path + "' in " + where + " is not a dataset");
  Handle type(H5Dget_type(d.get()), H5Tclose);
  Handle space(H5Dget_space(d.get()), H5Sclose);
  const size_t size = H5Tget_size(type.get());
  Array a;
  if (H5Tget_class(type.get()) != H5T_FLOAT || (size != 4 && size != 8))
    throw std::runtime_error("dataset '" + path + "' in " + where + " is not float32 or float64");
  a.f64 = size == 8;
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0 || rank > 8) throw std::runtime_error("dataset '" + path + "' in " + where + " has no usable shape");
  std::vector<hsize_t> dims(static_cast<size_t>(rank), 0);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  size_t count = 1;
  for (hsize_t x : dims) a.shape.push_back(int64_t(x)), count *= size_t(x);
  a.values.resize(count);
  if (count && H5Dread(d.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.values.data()) < 0)
    throw std::runtime_error("cannot read dataset '" + path + "' in " + where + " (damaged file?)");
  return a;
}

// The model's layers with weights (Conv and BatchNorm), in forward order.
std::vector<LayerSpec> weighted_specs() {
  std::vector<LayerSpec> out;
  for (const LayerSpec& s : Autoencoder::layers())
    if (s.kind == LayerSpec::Conv || s.kind == LayerSpec::BatchNorm) out.push_back(s);
  return out;
}

std::string spec_str(const LayerSpec& s) {
  if (s.kind == LayerSpec::Conv)
    return "a Conv2D 3x3 from " + std::to_string(s.in_channels) + " to " + std::to_string(s.channels) +
           " channels (mriae's conv" + std::to_string(s.index) + ")";
  return "a BatchNormalization of " + std::to_string(s.channels) + " channels (mriae's bn" + std::to_string(s.index) +
         ")";
}

std::vector<FileLayer> read_keras2(hid_t file) {
  hid_t root = file;
  std::optional<Handle> model_weights;
  if (H5Aexists(file, "layer_names") <= 0 && is_group(file, "model_weights")) {
    model_weights.emplace(H5Gopen2(file, "model_weights", H5P_DEFAULT), H5Gclose);
    root = model_weights->get();
  }
  const std::vector<std::string> names = read_strings(root, "layer_names", "the file's root");
  std::vector<FileLayer> layers;
  for (const std::string& name : names) {
    if (!is_group(root, name))
      throw std::runtime_error("layer_names lists '" + name + "' but the file has no group of that name");
    Handle g(H5Gopen2(root, name.c_str(), H5P_DEFAULT), H5Gclose);
    const std::string where = "layer '" + name + "'";
    FileLayer l;
    l.name = name;
    l.weight_names = read_strings(g.get(), "weight_names", where);
    if (l.weight_names.empty()) continue;  // InputLayer, MaxPooling2D, UpSampling2D
    for (const std::string& w : l.weight_names) l.weights.push_back(read_array(g.get(), w, where));
    layers.push_back(std::move(l));
  }
  return layers;
}

// Keras 3 names a layer's group after its class and its rank among the layers of that class.
std::string keras3_name(const char* cls, int rank) { return rank == 0 ? cls : std::string(cls) + "_" + std::to_string(rank); }

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

std::vector<std::string> children(hid_t group) {
  std::vector<std::string> names;
  H5Literate(group, H5_INDEX_NAME, H5_ITER_NATIVE, nullptr, collect_name, &names);
  return names;
}

std::vector<FileLayer> read_keras3(hid_t file) {
  Handle layers_group(H5Gopen2(file, "layers", H5P_DEFAULT), H5Gclose);
  std::vector<FileLayer> layers;
  std::vector<std::string> expected_names;
  int convs = 0, bns = 0;
  for (const LayerSpec& s : weighted_specs()) {
    const bool conv = s.kind == LayerSpec::Conv;
    const std::string name = conv ? keras3_name("conv2d", convs++) : keras3_name("batch_normalization", bns++);
    expected_names.push_back(name);
  }
  // Layers with weights that the tutorial's model lacks: more Conv2D or BatchNormalization layers than it
  // has, or layers of other kinds.
  int file_convs = 0, file_bns = 0;
  std::vector<std::string> extra;
  for (const std::string& child : children(layers_group.get())) {
    const std::string vars = child + "/vars";
    if (!is_group(layers_group.get(), vars)) continue;
    Handle v(H5Gopen2(layers_group.get(), vars.c_str(), H5P_DEFAULT), H5Gclose);
    H5G_info_t info;
    if (H5Gget_info(v.get(), &info) < 0 || info.nlinks == 0) continue;
    if (child.rfind("conv2d", 0) == 0) ++file_convs;
    else if (child.rfind("batch_normalization", 0) == 0) ++file_bns;
    if (std::find(expected_names.begin(), expected_names.end(), child) == expected_names.end()) extra.push_back(child);
  }
  if (!extra.empty() || file_convs != convs || file_bns != bns)
    throw std::runtime_error(std::to_string(file_convs) + " Conv2D and " + std::to_string(file_bns) +
                             " BatchNormalization layers with weights" +
                             (extra.empty() ? std::string() : " (unexpected: layers/" + extra.front() + ")") +
                             "; the tutorial's model has " + std::to_string(convs) + " and " + std::to_string(bns));
  for (const std::string& name : expected_names) {
    const std::string where = "layer 'layers/" + name + "'";
    const std::string vars = name + "/vars";
    if (!is_group(layers_group.get(), vars)) throw std::runtime_error("no " + where + " (no group layers/" + vars + ")");
    Handle v(H5Gopen2(layers_group.get(), vars.c_str(), H5P_DEFAULT), H5Gclose);
    H5G_info_t info;
    if (H5Gget_info(v.get(), &info) < 0) throw std::runtime_error("cannot read " + where);
    FileLayer l;
    l.name = "layers/" + name;
    for (hsize_t i = 0; i < info.nlinks; ++i) {
      l.weight_names.push_back("vars/" + std::to_string(i));
      l.weights.push_back(read_array(v.get(), std::to_string(i), where));
    }
    layers.push_back(std::move(l));
  }
  return layers;
}

// What a weight is called in Keras, in its order in the layer.
const std::vector<std::string>& keras_weight_roles(LayerSpec::Kind kind) {
  static const std::vector<std::string> conv = {"kernel", "bias"};
  static const std::vector<std::string> bn = {"gamma", "beta", "moving_mean", "moving_variance"};
  return kind == LayerSpec::Conv ? conv : bn;
}

std::vector<int64_t> keras_shape(const LayerSpec& s, size_t weight) {
  if (s.kind == LayerSpec::Conv && weight == 0) return {3, 3, s.in_channels, s.channels};
  return {s.channels};
}

// Checks the file's layers against the model and returns the tensors to copy (target, host values).
std::vector<std::pair<Tensor, Tensor>> match(const std::vector<FileLayer>& layers, Autoencoder& model) {
  const std::vector<LayerSpec> specs = weighted_specs();
  if (layers.size() != specs.size()) {
    std::string names;
    for (size_t i = 0; i < layers.size() && i < 3; ++i) names += (i ? ", " : "") + layers[i].name;
    throw std::runtime_error(std::to_string(layers.size()) + " layers with weights (" + names +
                             (layers.size() > 3 ? ", ..." : "") + "), but the tutorial's model has " +
                             std::to_string(specs.size()) + ": 11 Conv2D, each but the last followed by a "
                             "BatchNormalization");
  }
  const DType dt = model.config().dtype;
  std::vector<std::pair<Tensor, Tensor>> out;
  for (size_t i = 0; i < specs.size(); ++i) {
    const LayerSpec& s = specs[i];
    const FileLayer& l = layers[i];
    const std::string at = "layer '" + l.name + "' (layer " + std::to_string(i + 1) + " of " +
                           std::to_string(specs.size()) + " with weights) should be " + spec_str(s);
    const auto& roles = keras_weight_roles(s.kind);
    if (l.weights.size() != roles.size()) {
      std::string have;
      for (size_t k = 0; k < l.weight_names.size(); ++k) have += (k ? ", " : "") + l.weight_names[k];
      throw std::runtime_error(at + ", with " + std::to_string(roles.size()) + " weights, but holds " +
                               std::to_string(l.weights.size()) + " (" + have + ")");
    }
    for (size_t k = 0; k < roles.size(); ++k)
      if (l.weights[k].shape != keras_shape(s, k))
        throw std::runtime_error(at + ": its " + roles[k] + " '" + l.weight_names[k] + "' has shape " +
                                 dims_str(l.weights[k].shape) + ", expected " + dims_str(keras_shape(s, k)));
    const std::string n = std::to_string(s.index);
    auto host = [&](const Shape& shape, std::vector<double> v) { return Tensor::from_vector(shape, v).to(dt); };
    if (s.kind == LayerSpec::Conv) {
      const int64_t ci = s.in_channels, co = s.channels;
      const std::vector<double>& hwio = l.weights[0].values;
      std::vector<double> oihw(hwio.size());
      for (int64_t h = 0; h < 3; ++h)
        for (int64_t w = 0; w < 3; ++w)
          for (int64_t c = 0; c < ci; ++c)
            for (int64_t o = 0; o < co; ++o)
              oihw[size_t(((o * ci + c) * 3 + h) * 3 + w)] = hwio[size_t(((h * 3 + w) * ci + c) * co + o)];
      out.emplace_back(model.parameters().at("conv" + n + ".weight").value(), host({co, ci, 3, 3}, oihw));
      out.emplace_back(model.parameters().at("conv" + n + ".bias").value(), host({co}, l.weights[1].values));
    } else {
      BatchNormState& st = model.bn_states().at(size_t(s.index - 1));
      out.emplace_back(model.parameters().at("bn" + n + ".weight").value(), host({s.channels}, l.weights[0].values));
      out.emplace_back(model.parameters().at("bn" + n + ".bias").value(), host({s.channels}, l.weights[1].values));
      out.emplace_back(st.moving_mean, host({s.channels}, l.weights[2].values));
      out.emplace_back(st.moving_var, host({s.channels}, l.weights[3].values));
      out.emplace_back(st.hidden_mean, Tensor::zeros({s.channels}, Device::CPU, dt));
      out.emplace_back(st.hidden_var, Tensor::zeros({s.channels}, Device::CPU, dt));
    }
  }
  return out;
}

// --- writing ---

void check(herr_t status, const std::string& what) {
  if (status < 0) throw std::runtime_error("HDF5 could not write " + what);
}

hid_t checked(hid_t id, const std::string& what) {
  if (id < 0) throw std::runtime_error("HDF5 could not create " + what);
  return id;
}

// A 1-D array of variable-length UTF-8 strings, as h5py writes a list of str; an empty list as h5py writes
// it too (a float64 array of length 0), which is what Keras's loader expects of weightless layers.
void write_strings(hid_t obj, const char* name, const std::vector<std::string>& values) {
  const hsize_t n = values.size();
  Handle space(checked(H5Screate_simple(1, &n, nullptr), name), H5Sclose);
  if (values.empty()) {
    Handle a(checked(H5Acreate2(obj, name, H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), name), H5Aclose);
    return;
  }
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Handle a(checked(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), name), H5Aclose);
  std::vector<const char*> p;
  for (const std::string& v : values) p.push_back(v.c_str());
  check(H5Awrite(a.get(), type.get(), p.data()), std::string("the attribute ") + name);
}

void write_string(hid_t obj, const char* name, const std::string& value) {
  Handle space(checked(H5Screate(H5S_SCALAR), name), H5Sclose);
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Handle a(checked(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), name), H5Aclose);
  const char* p = value.c_str();
  check(H5Awrite(a.get(), type.get(), &p), std::string("the attribute ") + name);
}

// Creation properties without modification times, so that the same weights always give the same bytes.
Handle untimed(hid_t cls) {
  Handle p(checked(H5Pcreate(cls), "creation properties"), H5Pclose);
  check(H5Pset_obj_track_times(p.get(), false), "creation properties");
  return p;
}

hid_t make_group(hid_t loc, const std::string& name) {
  const Handle gcpl = untimed(H5P_GROUP_CREATE);
  return checked(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), "group " + name);
}

void write_array(hid_t loc, const std::string& name, const std::vector<int64_t>& shape,
                 const std::vector<double>& values, bool f64) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  Handle space(checked(H5Screate_simple(int(dims.size()), dims.data(), nullptr), name), H5Sclose);
  const Handle dcpl = untimed(H5P_DATASET_CREATE);
  Handle d(checked(H5Dcreate2(loc, name.c_str(), f64 ? H5T_IEEE_F64LE : H5T_IEEE_F32LE, space.get(), H5P_DEFAULT,
                              dcpl.get(), H5P_DEFAULT),
                   "dataset " + name),
           H5Dclose);
  check(H5Dwrite(d.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), "dataset " + name);
}

std::vector<double> host_values(const Tensor& t) {
  const Tensor h = t.device() == Device::CPU ? t : t.to(Device::CPU);
  return h.to(DType::Float64).to_vector<double>();
}

// The layer's weights in Keras's order and layout (kernels HWIO).
std::vector<std::pair<std::vector<int64_t>, std::vector<double>>> keras_arrays(const Autoencoder& model,
                                                                              const LayerSpec& s) {
  const std::string n = std::to_string(s.index);
  std::vector<std::pair<std::vector<int64_t>, std::vector<double>>> out;
  if (s.kind == LayerSpec::Conv) {
    const int64_t ci = s.in_channels, co = s.channels;
    const std::vector<double> oihw = host_values(model.parameters().at("conv" + n + ".weight").value());
    std::vector<double> hwio(oihw.size());
    for (int64_t o = 0; o < co; ++o)
      for (int64_t c = 0; c < ci; ++c)
        for (int64_t h = 0; h < 3; ++h)
          for (int64_t w = 0; w < 3; ++w)
            hwio[size_t(((h * 3 + w) * ci + c) * co + o)] = oihw[size_t(((o * ci + c) * 3 + h) * 3 + w)];
    out.push_back({keras_shape(s, 0), hwio});
    out.push_back({{co}, host_values(model.parameters().at("conv" + n + ".bias").value())});
  } else {
    const BatchNormState& st = model.bn_states().at(size_t(s.index - 1));
    out.push_back({{s.channels}, host_values(model.parameters().at("bn" + n + ".weight").value())});
    out.push_back({{s.channels}, host_values(model.parameters().at("bn" + n + ".bias").value())});
    out.push_back({{s.channels}, host_values(st.moving_mean)});
    out.push_back({{s.channels}, host_values(st.moving_var)});
  }
  return out;
}

// Every layer of the model as Keras lists it, with the names a fresh Keras session gives (Keras 2) or
// Keras 3's saving names (identical for this model but for the input layer's).
struct KerasLayer {
  std::string name;
  const LayerSpec* spec;  // null for the input layer
};

std::vector<KerasLayer> keras_layers(KerasFormat format) {
  std::vector<KerasLayer> out{{format == KerasFormat::Keras2 ? "input_1" : "input_layer", nullptr}};
  int conv = 0, bn = 0, pool = 0, up = 0;
  for (const LayerSpec& s : Autoencoder::layers()) {
    switch (s.kind) {
      case LayerSpec::Conv: out.push_back({keras3_name("conv2d", conv++), &s}); break;
      case LayerSpec::BatchNorm: out.push_back({keras3_name("batch_normalization", bn++), &s}); break;
      case LayerSpec::MaxPool: out.push_back({keras3_name("max_pooling2d", pool++), &s}); break;
      case LayerSpec::Upsample: out.push_back({keras3_name("up_sampling2d", up++), &s}); break;
    }
  }
  return out;
}

bool has_weights(const KerasLayer& l) {
  return l.spec && (l.spec->kind == LayerSpec::Conv || l.spec->kind == LayerSpec::BatchNorm);
}

void write_keras2(hid_t file, const Autoencoder& model, bool f64) {
  const std::vector<KerasLayer> layers = keras_layers(KerasFormat::Keras2);
  std::vector<std::string> names;
  for (const KerasLayer& l : layers) names.push_back(l.name);
  write_string(file, "backend", "tensorflow");
  // Keras converts weights only from files whose keras_version starts with 1; the layout is Keras 2's.
  write_string(file, "keras_version", "2.2.4");
  write_string(file, "written_by", "mriae export");
  write_strings(file, "layer_names", names);
  for (const KerasLayer& l : layers) {
    Handle g(make_group(file, l.name), H5Gclose);
    if (!has_weights(l)) {
      write_strings(g.get(), "weight_names", {});
      continue;
    }
    const auto& roles = keras_weight_roles(l.spec->kind);
    const auto arrays = keras_arrays(model, *l.spec);
    std::vector<std::string> weight_names;
    Handle inner(make_group(g.get(), l.name), H5Gclose);
    for (size_t k = 0; k < roles.size(); ++k) {
      weight_names.push_back(l.name + "/" + roles[k] + ":0");
      write_array(inner.get(), roles[k] + ":0", arrays[k].first, arrays[k].second, f64);
    }
    write_strings(g.get(), "weight_names", weight_names);
  }
}

void write_keras3(hid_t file, const Autoencoder& model, bool f64) {
  Handle layers_group(make_group(file, "layers"), H5Gclose);
  for (const KerasLayer& l : keras_layers(KerasFormat::Keras3)) {
    Handle g(make_group(layers_group.get(), l.name), H5Gclose);
    Handle vars(make_group(g.get(), "vars"), H5Gclose);
    write_string(vars.get(), "name", l.name);
    if (!has_weights(l)) continue;
    const auto arrays = keras_arrays(model, *l.spec);
    for (size_t k = 0; k < arrays.size(); ++k)
      write_array(vars.get(), std::to_string(k), arrays[k].first, arrays[k].second, f64);
  }
  Handle vars(make_group(file, "vars"), H5Gclose);
  write_string(vars.get(), "name", "functional");
}

}  // namespace

const char* keras_format_name(KerasFormat f) { return f == KerasFormat::Keras2 ? "keras2" : "keras3"; }

KerasFormat parse_keras_format(const std::string& name) {
  if (name == "keras2") return KerasFormat::Keras2;
  if (name == "keras3") return KerasFormat::Keras3;
  throw std::invalid_argument("--format must be keras2 or keras3, not '" + name + "'");
}

bool is_hdf5_file(const std::string& path) {
  // The superblock is at offset 0, or after a user block at 512, 1024, 2048, ... bytes.
  static const char kSignature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  for (std::streamoff at = 0; at <= (std::streamoff(1) << 20); at = at ? at * 2 : 512) {
    char buf[8];
    in.seekg(at);
    if (!in.read(buf, 8)) return false;
    if (std::memcmp(buf, kSignature, 8) == 0) return true;
  }
  return false;
}

KerasWeightsInfo load_keras_weights(const std::string& path, Autoencoder& model) {
  if (!fs::exists(path)) throw std::runtime_error(path + ": no such file");
  if (!is_hdf5_file(path)) throw std::runtime_error(path + ": not an HDF5 file (Keras weights are HDF5)");
  QuietErrors quiet;
  Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.ok()) throw std::runtime_error(path + ": cannot be opened as HDF5 (damaged or truncated?)");
  KerasWeightsInfo info;
  try {
    std::vector<FileLayer> layers;
    if (H5Aexists(file.get(), "layer_names") > 0 || is_group(file.get(), "model_weights")) {
      info.format = KerasFormat::Keras2;
      layers = read_keras2(file.get());
    } else if (is_group(file.get(), "layers")) {
      info.format = KerasFormat::Keras3;
      layers = read_keras3(file.get());
    } else {
      throw std::runtime_error(
          "neither Keras 2 weights (no root attribute layer_names) nor Keras 3 weights (no group layers)");
    }
    const auto pending = match(layers, model);
    for (const FileLayer& l : layers)
      for (const Array& a : l.weights)
        if (a.f64) info.dtype = DType::Float64;
    for (const auto& [target, values] : pending) Tensor(target).copy_from(values);
    for (BatchNormState& st : model.bn_states()) st.steps = 0;
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  return info;
}

void save_keras_weights(const std::string& path, const Autoencoder& model, KerasFormat format) {
  const std::string tmp = path + ".tmp";
  const bool f64 = model.config().dtype == DType::Float64;
  {
    QuietErrors quiet;
    try {
      Handle file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
      if (!file.ok()) throw std::runtime_error("cannot create " + tmp);
      if (format == KerasFormat::Keras2)
        write_keras2(file.get(), model, f64);
      else
        write_keras3(file.get(), model, f64);
      if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) throw std::runtime_error("cannot flush " + tmp);
    } catch (const std::exception& e) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw std::runtime_error(path + ": " + e.what());
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw std::runtime_error(path + ": cannot rename " + tmp + " to it");
  }
}

}  // namespace mriae
