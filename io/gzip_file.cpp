#include "io/gzip_file.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>

namespace mriae::io {

namespace {

// Owns the z_stream so every exit path ends it.
class Inflater {
 public:
  Inflater() {
    // 16 + MAX_WBITS: gzip framing only, so the trailer's CRC-32 and length are checked.
    if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) throw GzipError("zlib inflateInit2 failed");
  }
  ~Inflater() { inflateEnd(&zs_); }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  z_stream& zs() { return zs_; }

 private:
  z_stream zs_{};
};

}  // namespace

std::vector<unsigned char> read_gzip_range(const std::string& file, int64_t offset, int64_t count) {
  if (offset < 0 || count < 0) throw GzipError("negative offset or count");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw GzipError("cannot open " + file);

  // Grown as data arrives rather than sized to `count` at once, so a header that promises far more than the
  // stream holds costs no more memory than the stream.
  std::vector<unsigned char> out;
  std::vector<unsigned char> input(size_t(1) << 18), scratch(size_t(1) << 16);
  const int64_t wanted_end = offset + count;
  int64_t produced = 0;  // decompressed bytes so far
  bool member_done = false, any_member = false;

  Inflater inflater;
  z_stream& zs = inflater.zs();
  for (;;) {
    if (zs.avail_in == 0) {
      in.read(reinterpret_cast<char*>(input.data()), std::streamsize(input.size()));
      const std::streamsize got = in.gcount();
      if (got <= 0) break;
      zs.next_in = input.data();
      zs.avail_in = uInt(got);
    }
    if (member_done) {
      // Another member may follow (gzip allows concatenation); anything else after a complete member is
      // ignored, as gzip and gzread ignore trailing garbage.
      if (zs.avail_in >= 1 && zs.next_in[0] != 0x1f) break;
      if (inflateReset(&zs) != Z_OK) throw GzipError("zlib inflateReset failed");
      member_done = false;
    }
    // Bytes before `offset` and after offset + count go to the scratch buffer and are dropped.
    unsigned char* dst;
    int64_t room;
    if (produced < offset) {
      dst = scratch.data();
      room = std::min<int64_t>(int64_t(scratch.size()), offset - produced);
    } else if (produced < wanted_end) {
      const int64_t have = produced - offset;
      if (have == int64_t(out.size()))
        out.resize(size_t(std::min<int64_t>(count, std::max<int64_t>(2 * have, int64_t(1) << 20))));
      dst = out.data() + have;
      room = std::min<int64_t>(int64_t(out.size()) - have, int64_t(1) << 30);
    } else {
      dst = scratch.data();
      room = int64_t(scratch.size());
    }
    zs.next_out = dst;
    zs.avail_out = uInt(room);
    const int ret = inflate(&zs, Z_NO_FLUSH);
    produced += room - int64_t(zs.avail_out);
    if (ret == Z_STREAM_END) {
      member_done = any_member = true;
    } else if (ret == Z_NEED_DICT || ret == Z_DATA_ERROR || ret == Z_MEM_ERROR || ret == Z_STREAM_ERROR) {
      throw GzipError(std::string("corrupt gzip data (") + (zs.msg ? zs.msg : "zlib error") + ")");
    }
    // Z_OK and Z_BUF_ERROR: more input or output room is needed; the loop provides it.
  }
  if (!member_done)
    throw GzipError(any_member || produced > 0 ? "truncated gzip data (the stream ends before its end marker "
                                                 "and checksum)"
                                               : "not gzip data");
  if (produced < wanted_end)
    throw GzipError("the decompressed data has " + std::to_string(produced) + " bytes; " + std::to_string(count) +
                    " bytes from offset " + std::to_string(offset) + " were needed");
  return out;
}

}  // namespace mriae::io
