#pragma once
// Reading part of a gzip file's content with the whole stream verified. zlib's gzread is not enough for
// that: it stops when the caller has its bytes, and even reading on to the end it reports a missing
// trailer only if a read happens to ask inflate for more input, so a file cut just before its CRC, or one
// whose CRC does not match, can pass.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace mriae::io {

class GzipError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Returns bytes [offset, offset + count) of the decompressed content of `file`, after inflating every
// gzip member to its end and checking each one's CRC-32 and length. Memory use is bounded by `count`
// whatever the stream inflates to, and by the stream's real content whatever `count` claims. Throws
// GzipError (without the file name) when the stream is corrupt, truncated or shorter than offset + count.
std::vector<unsigned char> read_gzip_range(const std::string& file, int64_t offset, int64_t count);

}  // namespace mriae::io
