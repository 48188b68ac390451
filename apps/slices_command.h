#pragma once
namespace CLI {
class App;
}

namespace mriae {

// `mriae slices --weights CKPT --out FILE.safetensors`: the slices a run trained and validated on, prepared
// as its training prepared them (conformed, normalised, padded), with its split, for another framework to
// train on the same data (python/mriae_compare/train_torch.py) or for a look at what the model saw.
void add_slices_command(CLI::App& app);

}  // namespace mriae
