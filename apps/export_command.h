#pragma once
namespace CLI {
class App;
}

namespace mriae {

// `mriae export --weights CKPT --keras FILE [--format keras2|keras3]`: trained weights as a Keras weights file
// that the tutorial's model loads with model.load_weights(FILE).
void add_export_command(CLI::App& app);

}  // namespace mriae
