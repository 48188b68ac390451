#pragma once
// Marks functions that both the CPU reference and the CUDA kernels compile, so each op's
// per-element math is written once and the two backends cannot drift apart.
#if defined(__CUDACC__)
#define MRIAE_HD __host__ __device__
#else
#define MRIAE_HD
#endif

#include <math.h>

namespace mriae::hd {

// Overloads instead of std:: calls: std::exp is not a device function, and an unqualified
// exp(float) on the host may silently promote to double and differ from the GPU.
MRIAE_HD inline float exp_(float x) { return expf(x); }
MRIAE_HD inline double exp_(double x) { return exp(x); }
MRIAE_HD inline float sqrt_(float x) { return sqrtf(x); }
MRIAE_HD inline double sqrt_(double x) { return sqrt(x); }
MRIAE_HD inline float pow_(float x, float y) { return powf(x, y); }
MRIAE_HD inline double pow_(double x, double y) { return pow(x, y); }

}  // namespace mriae::hd
