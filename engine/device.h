#pragma once
#include <string>

namespace mriae {

enum class Device { CPU, CUDA };

const char* device_name(Device d);
// Parses "cpu" or "cuda"; throws std::invalid_argument naming the bad value.
Device parse_device(const std::string& name);

// True when this build has the CUDA backend and the runtime reports at least one usable GPU.
bool cuda_available();
// "auto" picks CUDA when available, else the CPU; "cuda" without a GPU is an error that says so.
Device resolve_device(const std::string& request);

}  // namespace mriae
