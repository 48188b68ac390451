#pragma once
// How a CUDA backward kernel delivers one element of an input gradient, as the CPU twins do: added to dx, or,
// for a fresh gradient buffer (accumulate == false, uniform across the grid), written over it without reading
// it, since such a buffer holds whatever the allocator left there.
namespace mriae::cuda {

__device__ inline void store_grad(float& dx, float g, bool accumulate) { dx = accumulate ? dx + g : g; }

}  // namespace mriae::cuda
