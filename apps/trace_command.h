#pragma once
namespace CLI {
class App;
}

namespace mriae {

// `mriae trace (--weights CKPT | --seed N) (--data ... | --input FILE) --out TRACE [options]`.
void add_trace_command(CLI::App& app);

}  // namespace mriae
