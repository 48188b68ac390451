#pragma once
// Hot CPU kernels are compiled for several instruction sets and the best one the processor has is picked at
// load time, so one portable binary still uses AVX-512 or AVX2 where they exist (the baseline build targets
// plain x86-64, i.e. SSE2). Functions called from a cloned one must be inlined into it to share its target.
// The AVX2 clone is x86-64-v3 (AVX2 with FMA, as every AVX2 processor since Haswell and Zen 1 has): GCC's
// plain "avx2" target leaves out FMA, so the convolutions ran as separate multiplies and adds there. With FMA
// in both vector clones, the convolutions' sums round alike in both, whichever register tiles they use.
//
// MRIAE_CPU_CLONES also turns off the contraction of a*b+c into fused multiply-adds, which the AVX2 and
// AVX-512 clones would otherwise do: the per-element math then rounds the same on every processor, as
// the CUDA kernels (built with -fmad=false) do too, so the CPU reference and the GPU agree bit for bit.
// The convolution kernels, whose multiply-adds are the work itself, use MRIAE_CPU_CLONES_FMA.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MRIAE_CPU_CLONES \
  __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default"), optimize("fp-contract=off")))
#define MRIAE_CPU_CLONES_FMA __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
#else
#define MRIAE_CPU_CLONES
#define MRIAE_CPU_CLONES_FMA
#endif
