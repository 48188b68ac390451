#pragma once
// Figures are drawn by gnuplot (Debian: gnuplot-nox), a real plotting tool, run as a child process.
#include <string>

namespace mriae {

// Runs gnuplot on a script (written to script_path, removed afterwards). Returns false with the reason in
// *why when gnuplot is missing or fails; callers go on without the figure.
bool run_gnuplot(const std::string& script_text, const std::string& script_path, std::string* why);

// A path quoted for a gnuplot string literal.
std::string gnuplot_quote(const std::string& path);

// Text for a title or label as a gnuplot string expression: shown verbatim (with the terminal's noenhanced
// option nothing in it is markup), each '\n' a line break.
std::string gnuplot_text(const std::string& text);

}  // namespace mriae
