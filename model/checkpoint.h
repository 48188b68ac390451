#pragma once
// Checkpoints in safetensors format. Tensor names match a PyTorch state_dict of the same model
// (conv1.weight, bn1.running_mean, bn1.num_batches_tracked, ...), so
//   sd = safetensors.torch.load_file(path)
//   model.load_state_dict({k: v for k, v in sd.items() if not k.startswith(("optimizer.", "bn_ema."))})
// loads it into PyTorch. Resuming state lives beside it under "optimizer." (RMSprop accumulators and step
// count) and "bn_ema." (the hidden EMAs of the Keras moving-statistics rule).
#include <map>
#include <string>

#include "engine/rmsprop.h"
#include "model/autoencoder.h"

namespace mriae {

using CheckpointMetadata = std::map<std::string, std::string>;

// Writes atomically (temp file, then rename). optimizer may be null (weights only).
void save_checkpoint(const std::string& path, const Autoencoder& model, const RMSprop* optimizer,
                     const CheckpointMetadata& metadata);

// Loads weights and batchnorm statistics into model and, when optimizer is not null, the optimiser state
// (an error if the file has none). Returns the metadata. Errors name the file and the problem; the model is
// only modified once the whole file has been read and checked.
CheckpointMetadata load_checkpoint(const std::string& path, Autoencoder& model, RMSprop* optimizer);

}  // namespace mriae
