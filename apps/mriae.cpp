// The mriae command-line program.
#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>

#include "apps/info_command.h"
#include "model/summary.h"

int main(int argc, char** argv) {
  CLI::App app{"mriae: a CUDA/C++ engine that trains the brain-MRI convolutional autoencoder"};
  app.require_subcommand(1);

  auto* summary = app.add_subcommand("summary", "Print the model's layers, output shapes and parameter counts");
  int height = 176, width = 176;
  summary->add_option("--height", height, "Input height (a multiple of 4)")->capture_default_str();
  summary->add_option("--width", width, "Input width (a multiple of 4)")->capture_default_str();

  mriae::add_info_command(app);

  CLI11_PARSE(app, argc, argv);
  try {
    if (summary->parsed()) std::cout << mriae::model_summary(height, width);
  } catch (const std::exception& e) {
    std::cerr << "mriae: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
