#include "tests/parity/state_file.h"

#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace mriae::parity {

namespace {

constexpr char kMagic[8] = {'M', 'R', 'I', 'A', 'E', 'S', 'T', '1'};
// Far above anything the model has; only there to reject garbage before it becomes a huge allocation.
constexpr uint32_t kMaxNdim = 8;

class Cursor {
 public:
  Cursor(const std::string& path, const std::vector<char>& bytes) : path_(path), bytes_(bytes) {}

  // `what` names the field in the error, so a truncation says where the file stopped making sense.
  const char* take(size_t n, const std::string& what) {
    if (n > bytes_.size() - pos_)
      fail("truncated: " + what + " needs " + std::to_string(n) + " bytes at offset " + std::to_string(pos_) +
           " but the file has " + std::to_string(bytes_.size()) + " bytes");
    const char* p = bytes_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint32_t u32(const std::string& what) { return uint32_t(le(take(4, what), 4)); }
  int64_t i64(const std::string& what) { return int64_t(le(take(8, what), 8)); }
  size_t remaining() const { return bytes_.size() - pos_; }
  size_t pos() const { return pos_; }

  [[noreturn]] void fail(const std::string& msg) const {
    throw std::runtime_error("parity state file " + path_ + ": " + msg);
  }

 private:
  static uint64_t le(const char* p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | uint8_t(p[i]);
    return v;
  }

  const std::string& path_;
  const std::vector<char>& bytes_;
  size_t pos_ = 0;
};

bool little_endian_host() {
  const uint32_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

}  // namespace

StateFile StateFile::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("parity state file " + path + ": cannot open it");
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error("parity state file " + path + ": read error");

  StateFile f;
  f.path_ = path;
  Cursor c(path, bytes);
  if (!little_endian_host()) c.fail("float data is little-endian and this host is not");
  if (std::memcmp(c.take(sizeof kMagic, "the magic"), kMagic, sizeof kMagic) != 0)
    c.fail("bad magic (expected \"MRIAEST1\"; a Git LFS pointer or a different file?)");
  const uint32_t version = c.u32("the version");
  if (version != kVersion && version != kVersionF64)
    c.fail("version " + std::to_string(version) + ", this reader understands versions " + std::to_string(kVersion) +
           " and " + std::to_string(kVersionF64));
  const uint32_t count = c.u32("the tensor count");

  for (uint32_t t = 0; t < count; ++t) {
    const std::string which = "tensor " + std::to_string(t);
    const uint32_t name_len = c.u32(which + "'s name length");
    std::string name(c.take(name_len, which + "'s name"), name_len);
    const std::string label = which + " '" + name + "'";
    if (name.empty()) c.fail(label + " has an empty name");
    if (f.tensors_.count(name)) c.fail(label + " appears twice");
    DType dtype = DType::Float32;
    if (version == kVersionF64) {
      const uint32_t code = c.u32(label + "'s dtype");
      if (code != 1 && code != 2)
        c.fail(label + " has dtype code " + std::to_string(code) + ", which format version 2 does not define");
      dtype = code == 2 ? DType::Float64 : DType::Float32;
    }
    const uint32_t ndim = c.u32(label + "'s ndim");
    if (ndim > kMaxNdim) c.fail(label + " claims " + std::to_string(ndim) + " dimensions");
    Shape shape(ndim);
    uint64_t numel = 1;
    for (auto& d : shape) {
      d = c.i64(label + "'s dims");
      if (d < 0) c.fail(label + " has a negative dimension");
      // Bounded by the bytes left, so the product cannot overflow before the check below.
      if (d > 0 && numel > c.remaining() / uint64_t(d))
        c.fail("truncated: " + label + " claims more data than the rest of the file");
      numel *= uint64_t(d);
    }
    Tensor v = Tensor::empty(shape, Device::CPU, dtype);
    const char* data = c.take(numel * dtype_size(dtype), label + "'s data");
    if (numel) std::memcpy(v.raw_data(), data, v.bytes());
    f.names_.push_back(name);
    f.tensors_.emplace(std::move(name), v);
  }
  if (c.remaining() != 0)
    c.fail(std::to_string(c.remaining()) + " unexpected bytes after the last of " + std::to_string(count) +
           " tensors (offset " + std::to_string(c.pos()) + ")");
  return f;
}

const Tensor& StateFile::at(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw std::out_of_range("parity state file " + path_ + " has no tensor '" + name + "'");
  return it->second;
}

}  // namespace mriae::parity
