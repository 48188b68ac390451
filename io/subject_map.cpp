#include "io/subject_map.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace mriae::io {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, '\t')) out.push_back(field);
  if (!line.empty() && line.back() == '\t') out.emplace_back();
  return out;
}

// One spelling per file however it is named (relative, through links), so that the table's entries and
// the --data paths compare equal when they are the same file.
std::string same_file_key(const fs::path& p) {
  std::error_code ec;
  const fs::path c = fs::weakly_canonical(fs::absolute(p), ec);
  return (ec ? fs::absolute(p).lexically_normal() : c).string();
}

}  // namespace

std::vector<std::string> read_subject_labels(const std::string& table, const std::vector<std::string>& volumes) {
  std::ifstream in(table);
  if (!in) throw std::invalid_argument(table + ": cannot read the subject table");
  const fs::path base = fs::path(table).parent_path();
  std::map<std::string, std::string> subject_of;  // file key -> label
  int file_col = -1, subject_col = -1;
  std::string line;
  for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const std::vector<std::string> f = split_tabs(line);
    const std::string where = table + ":" + std::to_string(line_no) + ": ";
    if (file_col < 0) {  // the header
      for (size_t i = 0; i < f.size(); ++i) {
        if (f[i] == "file") file_col = int(i);
        if (f[i] == "subject") subject_col = int(i);
      }
      if (file_col < 0 || subject_col < 0)
        throw std::invalid_argument(where + "the header must name a 'file' and a 'subject' column (tab-separated)");
      continue;
    }
    if (f.size() <= size_t(std::max(file_col, subject_col)))
      throw std::invalid_argument(where + "the row has " + std::to_string(f.size()) + " fields, too few for the header");
    const std::string& file = f[size_t(file_col)];
    const std::string& subject = f[size_t(subject_col)];
    if (file.empty() || subject.empty()) throw std::invalid_argument(where + "empty file or subject");
    const fs::path p = fs::path(file).is_absolute() ? fs::path(file) : base / file;
    auto [it, added] = subject_of.emplace(same_file_key(p), subject);
    if (!added && it->second != subject)
      throw std::invalid_argument(where + file + " is given two subjects, '" + it->second + "' and '" + subject + "'");
  }
  if (file_col < 0) throw std::invalid_argument(table + ": the subject table is empty (no header line)");

  std::vector<std::string> labels;
  labels.reserve(volumes.size());
  for (const std::string& v : volumes) {
    auto it = subject_of.find(same_file_key(v));
    if (it == subject_of.end())
      throw std::invalid_argument(v + ": not listed in the subject table " + table +
                                  " (every volume needs a row there with its subject)");
    labels.push_back(it->second);
  }
  return labels;
}

std::vector<int32_t> subject_numbers(const std::vector<std::string>& labels) {
  std::map<std::string, int32_t> number;
  std::vector<int32_t> out;
  out.reserve(labels.size());
  for (const std::string& l : labels) out.push_back(number.emplace(l, int32_t(number.size())).first->second);
  return out;
}

}  // namespace mriae::io
