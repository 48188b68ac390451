#pragma once
namespace CLI {
class App;
}

namespace mriae {

// `mriae evaluate --weights CKPT [--data ...] --out DIR [options]`. Runs from its own callback.
void add_evaluate_command(CLI::App& app);

}  // namespace mriae
