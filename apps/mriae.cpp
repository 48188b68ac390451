// The mriae command-line program. Each subcommand runs from its own callback; errors from any of them end
// here as one line on stderr and exit status 1.
#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>

#include "apps/conform_command.h"
#include "apps/evaluate_command.h"
#include "apps/export_command.h"
#include "apps/info_command.h"
#include "apps/interrupt.h"
#include "apps/reconstruct_command.h"
#include "apps/slices_command.h"
#include "apps/trace_command.h"
#include "apps/train_command.h"
#include "model/summary.h"

int main(int argc, char** argv) {
  // First, before any other thread exists: it blocks the interrupt signals that every later thread inherits.
  mriae::InterruptWatcher interrupt;

  CLI::App app{"mriae: a CUDA/C++ engine that trains the brain-MRI convolutional autoencoder"};
  app.require_subcommand(1);

  auto* summary = app.add_subcommand("summary", "Print the model's layers, output shapes and parameter counts");
  int height = 176, width = 176;
  summary->add_option("--height", height, "Input height (a multiple of 4)")->capture_default_str();
  summary->add_option("--width", width, "Input width (a multiple of 4)")->capture_default_str();
  summary->callback([&] { std::cout << mriae::model_summary(height, width); });

  mriae::add_info_command(app);
  mriae::add_train_command(app, interrupt);
  mriae::add_evaluate_command(app);
  mriae::add_reconstruct_command(app);
  mriae::add_conform_command(app);
  mriae::add_export_command(app);
  mriae::add_slices_command(app);
  mriae::add_trace_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "mriae: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
