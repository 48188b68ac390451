#pragma once
// Hot CPU kernels are compiled for several instruction sets and the best one the processor has is picked at
// load time, so one portable binary still uses AVX-512 or AVX2 where they exist (the baseline build targets
// plain x86-64, i.e. SSE2). Functions called from a cloned one must be inlined into it to share its target.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MRIAE_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MRIAE_CPU_CLONES
#endif
