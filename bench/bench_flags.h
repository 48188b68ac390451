#pragma once
// The kernel benchmarks' command lines (bench_cuda_ops, cpu_ops): "--name N" pairs, each a positive integer
// into its field, and the numbers of their tables.
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>

namespace mriae::bench {

struct IntFlag {
  const char* name;
  int* value;
};

// Calls usage (which must not return) with the reason for anything that is not a known flag followed by a
// positive integer.
inline void parse_int_flags(int argc, char** argv, std::initializer_list<IntFlag> flags,
                            void (*usage)(const std::string& why)) {
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    const IntFlag* flag = nullptr;
    for (const IntFlag& f : flags)
      if (k == f.name) flag = &f;
    if (!flag) usage("unknown argument '" + k + "'");
    if (i + 1 >= argc) usage("missing value after " + k);
    const std::string v = argv[++i];
    char* end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (*end != '\0' || n <= 0 || n > 100000) usage(k + " needs a positive integer, got '" + v + "'");
    *flag->value = int(n);
  }
}

inline std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace mriae::bench
