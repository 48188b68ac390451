#pragma once
// Which volumes are scans of one person, for subject-wise splits: a tab-separated table with a header
// line naming (at least) a `file` and a `subject` column, such as the data/manifest.tsv that
// scripts/fetch-data.sh writes next to the volumes. Lines starting with '#' and blank lines are skipped.
// A relative `file` is relative to the table's own folder.
#include <cstdint>
#include <string>
#include <vector>

namespace mriae::io {

// The subject label of each of `volumes`, in order. Throws std::invalid_argument naming the table when it
// cannot be read, lacks either column, has a short row, or gives one file two subjects, and naming the
// volume when the table does not list it.
std::vector<std::string> read_subject_labels(const std::string& table, const std::vector<std::string>& volumes);

// Labels to subject numbers 0..k-1, numbered in order of first appearance.
std::vector<int32_t> subject_numbers(const std::vector<std::string>& labels);

}  // namespace mriae::io
