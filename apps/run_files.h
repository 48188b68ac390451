#pragma once
// The files a training run leaves in its output folder besides checkpoints: history.csv, the loss plot and
// config.json. Each is written to a temporary name and renamed, so an interrupted write never leaves half a
// file.
#include <cstdint>
#include <string>
#include <vector>

namespace mriae {

struct EpochRecord {
  int64_t epoch = 0;  // 1-based, as Keras prints it
  double loss = 0, val_loss = 0, seconds = 0;
};

void write_text_atomic(const std::string& path, const std::string& text);

std::string history_csv(const std::vector<EpochRecord>& history);
// Inverse of history_csv, for resuming; throws naming the line on malformed input.
std::vector<EpochRecord> parse_history_csv(const std::string& text);

// Draws training loss (points) and validation loss (line) against epoch into a PNG with gnuplot, like the
// tutorial's figure. Returns false, with the reason in *why, when gnuplot is missing or fails; the run
// goes on without the plot.
bool plot_history(const std::vector<EpochRecord>& history, const std::string& png_path, std::string* why);

}  // namespace mriae
