#include "apps/data_paths.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

namespace mriae {

namespace fs = std::filesystem;

namespace {

bool is_nifti(const fs::path& p) {
  const std::string n = p.filename().string();
  auto ends = [&](const std::string& s) { return n.size() > s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0; };
  return ends(".nii") || ends(".nii.gz") || ends(".hdr") || ends(".hdr.gz");
}

}  // namespace

std::vector<std::string> expand_data_paths(const std::vector<std::string>& inputs) {
  std::vector<std::string> out;
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<std::string> found;
      for (auto& e : fs::directory_iterator(in))
        if (e.is_regular_file() && is_nifti(e.path())) found.push_back(e.path().string());
      if (found.empty()) throw std::invalid_argument(in + ": folder holds no NIfTI file (.nii, .nii.gz, .hdr)");
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else if (fs::exists(in, ec)) {
      out.push_back(in);
    } else {
      throw std::invalid_argument(in + ": no such file or folder");
    }
  }
  return out;
}

}  // namespace mriae
