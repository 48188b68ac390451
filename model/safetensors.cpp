#include "model/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace mriae {

namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian; so must the host be");

size_t dtype_size(const std::string& dtype) {
  if (dtype == "F32") return 4;
  if (dtype == "F64" || dtype == "I64") return 8;
  return 0;
}

int64_t elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

const SafeTensor& find(const SafetensorsFile& f, const std::string& name, const std::string& dtype,
                       const std::vector<int64_t>& shape) {
  auto it = f.tensors.find(name);
  if (it == f.tensors.end()) throw std::runtime_error("tensor '" + name + "' is missing");
  if (it->second.dtype != dtype) throw std::runtime_error("tensor '" + name + "' is " + it->second.dtype + ", expected " + dtype);
  if (it->second.shape != shape)
    throw std::runtime_error("tensor '" + name + "' has shape " + shape_text(it->second.shape) + ", expected " +
                             shape_text(shape));
  return it->second;
}

}  // namespace

void SafetensorsFile::add_f32(const std::string& name, const std::vector<int64_t>& shape, const float* data) {
  SafeTensor t{"F32", shape, std::vector<uint8_t>(size_t(elements(shape)) * 4)};
  std::memcpy(t.bytes.data(), data, t.bytes.size());
  tensors[name] = std::move(t);
}

void SafetensorsFile::add_f64(const std::string& name, const std::vector<int64_t>& shape, const double* data) {
  SafeTensor t{"F64", shape, std::vector<uint8_t>(size_t(elements(shape)) * 8)};
  std::memcpy(t.bytes.data(), data, t.bytes.size());
  tensors[name] = std::move(t);
}

const std::string& SafetensorsFile::dtype(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw std::runtime_error("tensor '" + name + "' is missing");
  return it->second.dtype;
}

void SafetensorsFile::add_i64(const std::string& name, const std::vector<int64_t>& shape, const int64_t* data) {
  SafeTensor t{"I64", shape, std::vector<uint8_t>(size_t(elements(shape)) * 8)};
  std::memcpy(t.bytes.data(), data, t.bytes.size());
  tensors[name] = std::move(t);
}

std::vector<float> SafetensorsFile::f32(const std::string& name, const std::vector<int64_t>& shape) const {
  const SafeTensor& t = find(*this, name, "F32", shape);
  std::vector<float> v(t.bytes.size() / 4);
  std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
  return v;
}

std::vector<double> SafetensorsFile::f64(const std::string& name, const std::vector<int64_t>& shape) const {
  const SafeTensor& t = find(*this, name, "F64", shape);
  std::vector<double> v(t.bytes.size() / 8);
  std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
  return v;
}

std::vector<int64_t> SafetensorsFile::i64(const std::string& name, const std::vector<int64_t>& shape) const {
  const SafeTensor& t = find(*this, name, "I64", shape);
  std::vector<int64_t> v(t.bytes.size() / 8);
  std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
  return v;
}

void SafetensorsFile::write_atomic(const std::string& path) const {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (auto& [name, t] : tensors) {  // std::map: sorted names, so the same state gives the same bytes
    header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump();
  // Pad the header with spaces to 8 bytes, so the data that follows is aligned for readers that map it.
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t len = text.size();

  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) fail(tmp, std::string("cannot create: ") + std::strerror(errno));
  auto write_all = [&](const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      const ssize_t w = ::write(fd, c, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        const std::string why = std::strerror(errno);
        ::close(fd);
        ::unlink(tmp.c_str());
        fail(tmp, "write failed: " + why);
      }
      c += w;
      n -= size_t(w);
    }
  };
  write_all(&len, 8);
  write_all(text.data(), text.size());
  for (auto& [name, t] : tensors) write_all(t.bytes.data(), t.bytes.size());
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    fail(tmp, "flush failed: " + why);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    fail(path, "cannot replace: " + why);
  }
}

SafetensorsFile SafetensorsFile::read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open (missing or unreadable)");
  in.seekg(0, std::ios::end);
  const uint64_t size = uint64_t(in.tellg());
  in.seekg(0);
  uint64_t len = 0;
  if (size < 8 || !in.read(reinterpret_cast<char*>(&len), 8)) fail(path, "too short to be a safetensors file");
  if (len > size - 8 || len > (100u << 20)) fail(path, "header length " + std::to_string(len) + " does not fit the file");
  std::string text(len, '\0');
  if (!in.read(text.data(), std::streamsize(len))) fail(path, "truncated header");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");
  const uint64_t data_size = size - 8 - len;
  SafetensorsFile f;
  std::vector<uint8_t> data(data_size);
  if (data_size && !in.read(reinterpret_cast<char*>(data.data()), std::streamsize(data_size))) fail(path, "truncated data");
  for (auto& [name, v] : header.items()) {
    try {
      if (name == "__metadata__") {
        f.metadata = v.get<std::map<std::string, std::string>>();
        continue;
      }
      SafeTensor t;
      t.dtype = v.at("dtype").get<std::string>();
      t.shape = v.at("shape").get<std::vector<int64_t>>();
      const auto off = v.at("data_offsets").get<std::vector<uint64_t>>();
      const size_t es = dtype_size(t.dtype);
      if (es == 0) fail(path, "tensor '" + name + "' has unsupported dtype " + t.dtype);
      for (int64_t d : t.shape)
        if (d < 0) fail(path, "tensor '" + name + "' has a negative dimension");
      if (off.size() != 2 || off[0] > off[1] || off[1] > data_size)
        fail(path, "tensor '" + name + "' has a byte range outside the file (truncated?)");
      if (off[1] - off[0] != uint64_t(elements(t.shape)) * es)
        fail(path, "tensor '" + name + "' byte range does not match its shape " + shape_text(t.shape));
      t.bytes.assign(data.begin() + std::ptrdiff_t(off[0]), data.begin() + std::ptrdiff_t(off[1]));
      f.tensors[name] = std::move(t);
    } catch (const nlohmann::json::exception& e) {
      fail(path, "malformed header entry '" + name + "': " + e.what());
    }
  }
  return f;
}

}  // namespace mriae
