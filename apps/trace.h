#pragma once
// `mriae trace`: a few training steps of the model on the CPU with everything they compute written to one
// safetensors file, for checking another implementation (python/mriae_compare) tensor by tensor.
#include <cstdint>
#include <string>
#include <vector>

namespace mriae {

struct TraceOptions {
  std::string weights;              // a checkpoint; empty: the seeded initialisation
  uint64_t seed = 13;
  bool seed_given = false;
  std::vector<std::string> data;    // NIfTI files (already expanded), or
  std::string input;                // a safetensors file with `input` [N, 1, H, W]
  int64_t batch = 2;
  int steps = 3;
  std::string dtype = "float64";
  std::string out;
};

// The trace's format version (metadata "format_version"); bump it when names or meanings change.
constexpr const char* kTraceFormatVersion = "1";

// Runs the steps and writes the trace atomically. Throws naming the option or file at fault; nothing is
// written then.
void write_trace(const TraceOptions& options);

}  // namespace mriae
