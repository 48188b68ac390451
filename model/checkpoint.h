#pragma once
// Checkpoints in safetensors format. Tensor names match a PyTorch state_dict of the same model
// (conv1.weight, bn1.running_mean, bn1.num_batches_tracked, ...), stored in the model's dtype (F32 or F64), so
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
// (an error if the file has none). Returns the metadata, with "dtype" set to the dtype of the file's
// weights ("float32" or "float64"). Errors name the file and the problem; the model is only modified once
// the whole file has been read and checked.
// dtypes: weights for inference (optimizer null) are converted to the model's dtype (float64 to float32
// rounds; dtype_note() then says so); resuming (optimizer given) refuses a file of another dtype, since the
// run would not continue in the arithmetic it started in.
CheckpointMetadata load_checkpoint(const std::string& path, Autoencoder& model, RMSprop* optimizer);

// After load_checkpoint: a line telling the user that the weights were converted, or "" when they were not.
std::string dtype_note(const std::string& path, const CheckpointMetadata& loaded, DType model_dtype);

}  // namespace mriae
