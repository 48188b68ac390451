#pragma once
namespace CLI {
class App;
}

namespace mriae {

// `mriae reconstruct --weights CKPT --in VOLUME --out OUTPUT [options]`. Runs from its own callback.
void add_reconstruct_command(CLI::App& app);

}  // namespace mriae
