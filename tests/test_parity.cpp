// Parity with PyTorch in the manner of llm.c's test_gpt2: tests/parity/make_state.py runs the same model in
// float64 from float32 starting values and stores what the engine must reproduce; this test runs the engine
// in float32 and compares tensor by tensor. See tests/parity/README.md for how every limit was measured.
//
// Two effects that are not engine errors shape the checks:
//  * ReLU kink crossings. ~2.2M ReLU inputs per forward pass; a handful lie within float32 rounding of zero,
//    and when one lands on the other side its upstream gradient jumps by that element's whole dy. Through the
//    batchnorm backward that jump reaches every gradient upstream: ~1e-2 relative instead of ~1e-5. It cannot
//    reach the forward pass (ReLU is continuous) nor the gradients of conv11 and bn10, which no ReLU separates
//    from the loss, so those keep tight limits.
//  * RMSprop's first step is lr*sign(g)*sqrt(1/(1-rho)) for any |g| well above eps, so an element whose
//    gradient is uncertain (a sign flip, or a mathematically zero gradient left as rounding noise) moves a
//    full step either way. Such elements are named, counted and bounded instead of loosening every limit, and
//    each step starts from the reference's parameters (teacher forcing): left free, a few hundred such
//    elements make a 3-step trajectory diverge chaotically (11% on the step-3 output), which would test nothing.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/parity/state_file.h"
#include "tests/parity/step_comparison.h"

using namespace mriae;
using parity::StateFile;

namespace {

const std::string kStatePath = std::string(MRIAE_SOURCE_DIR) + "/tests/parity/state_v1.bin";

}  // namespace

// The classes and limits are tests/parity/step_comparison.h's, shared with the GPU's run of the same file.
TEST_CASE("engine matches the PyTorch reference state over three RMSprop steps") {
  const parity::Report report = parity::run_state_file(kStatePath, Device::CPU);
  for (const std::string& f : report.failures()) FAIL_CHECK(f);
  CHECK(report.failures().empty());
}

namespace {

// A scratch directory removed on scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mriae_parity_XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string write_bytes(const std::filesystem::path& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  REQUIRE(out);
  return path.string();
}

// The message must name the file and say what is wrong.
void expect_load_error(const std::string& path, const std::string& what) {
  try {
    StateFile::load(path);
    FAIL("loading " << path << " should have failed with '" << what << "'");
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find(what) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("state file reader rejects damaged copies with an error naming the file") {
  const std::vector<char> good = read_bytes(kStatePath);
  REQUIRE(good.size() > 64);
  TempDir dir;

  std::vector<char> half(good.begin(), good.begin() + std::ptrdiff_t(good.size() / 2));
  expect_load_error(write_bytes(dir.path / "half.bin", half), "truncated");

  std::vector<char> header_only(good.begin(), good.begin() + 14);
  expect_load_error(write_bytes(dir.path / "header.bin", header_only), "truncated");

  std::vector<char> bad_magic = good;
  bad_magic[0] = 'X';
  expect_load_error(write_bytes(dir.path / "magic.bin", bad_magic), "bad magic");

  std::vector<char> lfs_pointer{'v', 'e', 'r', 's', 'i', 'o', 'n', ' ', 'h', 't', 't', 'p', 's', ':', '/', '/'};
  expect_load_error(write_bytes(dir.path / "pointer.bin", lfs_pointer), "bad magic");

  std::vector<char> version = good;
  version[8] = 2;
  expect_load_error(write_bytes(dir.path / "version.bin", version), "version 2");

  std::vector<char> trailing = good;
  trailing.push_back(0);
  expect_load_error(write_bytes(dir.path / "trailing.bin", trailing), "unexpected bytes");

  std::vector<char> huge_dim = good;
  REQUIRE(std::string(good.data() + 20, 5) == "input");
  // First tensor's first dim: after magic (8), version and count (8), name length (4), "input" (5), ndim (4).
  huge_dim[8 + 8 + 4 + 5 + 4 + 7] = 0x40;
  expect_load_error(write_bytes(dir.path / "dims.bin", huge_dim), "claims more data than the rest of the file");

  expect_load_error((dir.path / "missing.bin").string(), "cannot open");

  const StateFile ok = StateFile::load(write_bytes(dir.path / "copy.bin", good));
  CHECK_THROWS_AS(ok.at("no/such/tensor"), std::out_of_range);
}
