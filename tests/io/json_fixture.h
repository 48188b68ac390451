#pragma once
// The nibabel-written JSON fixtures of the io tests (tests/io/make_*_fixture.py), and the files they name,
// which a machine without mricron-data or python3-nibabel lacks: those are skipped with a message.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace mriae::io::testing {

inline nlohmann::json load_json_fixture(const std::string& name) {
  const std::string path = std::string(MRIAE_SOURCE_DIR) + "/tests/io/" + name;
  std::ifstream f(path);
  REQUIRE_MESSAGE(f.good(), "cannot open " << path);
  return nlohmann::json::parse(f);
}

inline bool fixture_file_present(const std::string& path) {
  if (std::filesystem::exists(path)) return true;
  MESSAGE("skipped: " << path << " is not installed");
  return false;
}

}  // namespace mriae::io::testing
