#pragma once
namespace CLI {
class App;
}

namespace mriae {

class InterruptWatcher;

// `mriae train --data FILE_OR_DIR... --out DIR [options]`. Runs from its own callback.
void add_train_command(CLI::App& app, InterruptWatcher& interrupt);

}  // namespace mriae
