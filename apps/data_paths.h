#pragma once
#include <string>
#include <vector>

namespace mriae {

// Files as given, and for each folder the NIfTI files in it (.nii, .nii.gz, .hdr), sorted by name so a run
// is reproducible. Throws std::invalid_argument naming a path that does not exist or a folder with no
// NIfTI file.
std::vector<std::string> expand_data_paths(const std::vector<std::string>& inputs);

}  // namespace mriae
