#pragma once
// `mriae info FILE...`: what the reader makes of an image, to check inputs before training on them.
#include <string>

namespace CLI {
class App;
}

namespace mriae {

// Adds the `info` subcommand to app; it runs from its own callback, so the caller only registers it.
void add_info_command(CLI::App& app);

// The report `mriae info` prints for one file. Throws io::NiftiError for an unreadable file.
std::string describe_image(const std::string& path);

}  // namespace mriae
