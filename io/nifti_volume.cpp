#include "io/nifti_volume.h"

#include <nifti2_io.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <system_error>

#include "io/gzip_file.h"

namespace mriae::io {

namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw NiftiError(path + ": " + problem);
}

struct NimDeleter {
  void operator()(nifti_image* p) const { nifti_image_free(p); }
};
using NimPtr = std::unique_ptr<nifti_image, NimDeleter>;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// niftilib's byteorder code for big-endian files (MSB_FIRST, which nifti2_io.h defines only for
// nifti2_io.c itself).
constexpr int kMsbFirst = 2;

// A header that claims more than this is corrupt or hostile rather than an MRI volume; refusing it before
// allocating keeps a bad header from asking for terabytes.
constexpr int64_t kMaxImageBytes = int64_t(1) << 36;  // 64 GiB

// Checked on the raw header before niftilib decodes it: niftilib turns a zero-sized dimension into 1 (and
// then zero-fills data that is not there), and its decoder can overrun its stack on a header whose
// sizeof_hdr and dim[0] disagree about the byte order (found by io/fuzz/nifti_reader_fuzzer). The byte
// order is taken from sizeof_hdr, as niftilib's version detection does, and dim must make sense in it.
// Returns the header's version: 0 = ANALYZE 7.5, 1 = NIfTI-1, 2 = NIfTI-2.
int check_raw_header(const std::string& path) {
  int version = -1;
  std::unique_ptr<void, FreeDeleter> raw(nifti_read_header(path.c_str(), &version, 0));
  if (!raw) fail(path, "not a NIfTI-1, NIfTI-2 or ANALYZE 7.5 file (no valid header could be read)");
  int64_t dim[8];
  if (version == 2) {
    auto* h = static_cast<nifti_2_header*>(raw.get());
    if (h->sizeof_hdr != 540) {
      nifti_swap_4bytes(1, &h->sizeof_hdr);
      nifti_swap_8bytes(8, h->dim);
    }
    if (h->sizeof_hdr != 540) fail(path, "invalid NIfTI-2 header size " + std::to_string(h->sizeof_hdr));
    for (int i = 0; i < 8; ++i) dim[i] = h->dim[i];
  } else {
    // ANALYZE 7.5 (version 0) shares the NIfTI-1 layout up to and including dim.
    auto* h = static_cast<nifti_1_header*>(raw.get());
    if (h->sizeof_hdr != 348) {
      nifti_swap_4bytes(1, &h->sizeof_hdr);
      nifti_swap_2bytes(8, h->dim);
    }
    if (h->sizeof_hdr != 348) fail(path, "invalid NIfTI-1 header size " + std::to_string(h->sizeof_hdr));
    for (int i = 0; i < 8; ++i) dim[i] = h->dim[i];
  }
  if (dim[0] < 1 || dim[0] > 7)
    fail(path, "invalid header: dim[0] (the number of dimensions) is " + std::to_string(dim[0]) +
                   ", not 1 to 7");
  for (int64_t i = 1; i <= dim[0]; ++i)
    if (dim[i] <= 0)
      fail(path, "dimension " + std::to_string(i) + " has size " + std::to_string(dim[i]) +
                     " (every dimension must be at least 1)");
  return version;
}

// The voxel block is read here rather than by nifti_image_load, for three reasons: niftilib silently
// replaces NaN and infinite floats with 0 while loading (nibabel keeps them, and a data set should refuse
// them rather than train on invented zeros); it reports short reads only on stderr, zero-filling what is
// missing; and it stops inflating at the last byte it needs, so damage that only the gzip CRC reveals goes
// unnoticed.
std::vector<unsigned char> read_voxel_bytes(const std::string& path, const char* iname, int64_t offset,
                                            int64_t bytes, bool gzipped) {
  if (gzipped) {
    try {
      return read_gzip_range(iname, offset, bytes);
    } catch (const GzipError& e) {
      fail(path, e.what());
    }
  }
  std::ifstream in(iname, std::ios::binary);
  if (!in) fail(path, std::string("cannot open the image data file ") + iname);
  std::vector<unsigned char> data(static_cast<size_t>(bytes));
  in.seekg(std::streamoff(offset));
  in.read(reinterpret_cast<char*>(data.data()), std::streamsize(bytes));
  if (in.gcount() != std::streamsize(bytes))
    fail(path, "truncated: " + std::to_string(in.gcount()) + " of " + std::to_string(bytes) +
                   " bytes of voxel data could be read");
  return data;
}

std::array<std::array<double, 4>, 4> to_array(const nifti_dmat44& m) {
  std::array<std::array<double, 4>, 4> a{};
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) a[r][c] = m.m[r][c];
  return a;
}

NiftiHeader header_from(const nifti_image& nim, int version) {
  NiftiHeader h;
  h.version = version;
  h.two_files = nim.fname && nim.iname && std::strcmp(nim.fname, nim.iname) != 0;
  h.gzipped = nim.iname && nifti_is_gzfile(nim.iname);
  h.big_endian = nim.byteorder == kMsbFirst;
  for (int i = 0; i < 8; ++i) {
    h.dim[i] = nim.dim[i];
    h.pixdim[i] = nim.pixdim[i];
  }
  h.datatype = nim.datatype;
  h.bytes_per_voxel = nim.nbyper;
  h.scl_slope = nim.scl_slope;
  h.scl_inter = nim.scl_inter;
  h.cal_min = nim.cal_min;
  h.cal_max = nim.cal_max;
  h.qform_code = nim.qform_code;
  h.sform_code = nim.sform_code;
  h.quatern_b = nim.quatern_b;
  h.quatern_c = nim.quatern_c;
  h.quatern_d = nim.quatern_d;
  h.qoffset_x = nim.qoffset_x;
  h.qoffset_y = nim.qoffset_y;
  h.qoffset_z = nim.qoffset_z;
  h.qfac = nim.qfac;
  h.qto_xyz = to_array(nim.qto_xyz);
  h.sto_xyz = to_array(nim.sto_xyz);
  h.xyz_units = nim.xyz_units;
  h.time_units = nim.time_units;
  h.freq_dim = nim.freq_dim;
  h.phase_dim = nim.phase_dim;
  h.slice_dim = nim.slice_dim;
  h.slice_code = nim.slice_code;
  h.slice_start = nim.slice_start;
  h.slice_end = nim.slice_end;
  h.slice_duration = nim.slice_duration;
  h.toffset = nim.toffset;
  h.intent_code = nim.intent_code;
  h.intent_p1 = nim.intent_p1;
  h.intent_p2 = nim.intent_p2;
  h.intent_p3 = nim.intent_p3;
  // The fixed-size text fields need not be NUL-terminated on disk.
  h.intent_name.assign(nim.intent_name, strnlen(nim.intent_name, sizeof nim.intent_name));
  h.descrip.assign(nim.descrip, strnlen(nim.descrip, sizeof nim.descrip));
  h.aux_file.assign(nim.aux_file, strnlen(nim.aux_file, sizeof nim.aux_file));
  h.num_extensions = nim.num_ext;
  return h;
}

// A fully read image: the header (with its datatype checked) and all its voxels as stored, in native byte
// order.
struct LoadedImage {
  NiftiHeader header;
  std::vector<unsigned char> bytes;
  int64_t voxels = 0;
};

LoadedImage load_image(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail(path, "no such file");
  if (fs::is_directory(path, ec)) fail(path, "is a directory, not an image file");

  const int version = check_raw_header(path);
  NimPtr nim(nifti_image_read(path.c_str(), 0));  // the header (and extensions) only
  if (!nim) fail(path, "niftilib could not decode the header (not a valid NIfTI or ANALYZE image)");
  LoadedImage img;
  img.header = header_from(*nim, version);

  if (nim->nifti_type == NIFTI_FTYPE_ASCII) fail(path, "the NIfTI ASCII format is not supported");
  if (!datatype_supported(nim->datatype))
    fail(path, "unsupported datatype " + datatype_name(nim->datatype) + " (code " +
                   std::to_string(nim->datatype) + "); only real integer and floating-point images can be read");
  int nbyper = 0, swapsize = 0;
  nifti_datatype_sizes(nim->datatype, &nbyper, &swapsize);
  if (nbyper != nim->nbyper || nbyper <= 0)
    fail(path, "header's bytes per voxel (" + std::to_string(nim->nbyper) + ") do not match its datatype " +
                   datatype_name(nim->datatype));

  int64_t voxels = 1;
  for (int64_t i = 1; i <= nim->dim[0]; ++i) {
    if (nim->dim[i] <= 0 || voxels > kMaxImageBytes / nim->dim[i])
      fail(path, "dimension " + std::to_string(i) + " of size " + std::to_string(nim->dim[i]) +
                     " makes the image too large or is not positive");
    voxels *= nim->dim[i];
  }
  if (voxels != nim->nvox)
    fail(path, "header's voxel count " + std::to_string(nim->nvox) + " does not match its dimensions");
  const int64_t data_bytes = voxels * nbyper;
  if (data_bytes > kMaxImageBytes)
    fail(path, "the header claims " + std::to_string(data_bytes) + " bytes of data, more than this reader accepts");
  if (nim->iname_offset < 0) fail(path, "negative voxel data offset " + std::to_string(nim->iname_offset));

  if (!nim->iname || !fs::exists(nim->iname, ec))
    fail(path, std::string("image data file ") + (nim->iname ? nim->iname : "(none)") + " not found");
  if (!img.header.gzipped) {
    // Checked before allocating, so a header that promises more than the file holds fails at once.
    const auto size = fs::file_size(nim->iname, ec);
    if (ec) fail(path, std::string("cannot stat the image data file ") + nim->iname + ": " + ec.message());
    if (int64_t(size) < nim->iname_offset + data_bytes)
      fail(path, "truncated: the data needs " + std::to_string(data_bytes) + " bytes from offset " +
                     std::to_string(nim->iname_offset) + " but " + nim->iname + " has " + std::to_string(size) +
                     " bytes");
  }

  img.bytes = read_voxel_bytes(path, nim->iname, nim->iname_offset, data_bytes, img.header.gzipped);
  if (nim->byteorder != nifti_short_order() && swapsize > 1)
    nifti_swap_Nbytes(voxels, swapsize, img.bytes.data());
  img.voxels = voxels;
  return img;
}

template <typename T>
T load(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // the byte buffer holds no T objects; memcpy reads one without aliasing UB
  return v;
}

template <typename T>
void convert(const unsigned char* src, int64_t first, int64_t n, bool scaled, double slope, double inter,
             float* dst) {
  const unsigned char* s = src + first * int64_t(sizeof(T));
  if (scaled) {
    for (int64_t i = 0; i < n; ++i) dst[i] = float(double(load<T>(s + i * int64_t(sizeof(T)))) * slope + inter);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = float(load<T>(s + i * int64_t(sizeof(T))));
  }
}

// Converts voxels [first, first + n) of a loaded image to float32, scaled.
void to_float(const LoadedImage& img, int64_t first, int64_t n, float* dst) {
  const NiftiHeader& h = img.header;
  const bool scaled = h.has_scaling();
  const double slope = h.scl_slope;
  // A NaN intercept alongside a valid slope is read as 0, as nibabel does.
  const double inter = std::isfinite(h.scl_inter) ? h.scl_inter : 0.0;
  const unsigned char* data = img.bytes.data();
  switch (h.datatype) {
    case NIFTI_TYPE_UINT8: return convert<uint8_t>(data, first, n, scaled, slope, inter, dst);
    case NIFTI_TYPE_INT8: return convert<int8_t>(data, first, n, scaled, slope, inter, dst);
    case NIFTI_TYPE_UINT16: return convert<uint16_t>(data, first, n, scaled, slope, inter, dst);
    case NIFTI_TYPE_INT16: return convert<int16_t>(data, first, n, scaled, slope, inter, dst);
    case NIFTI_TYPE_UINT32: return convert<uint32_t>(data, first, n, scaled, slope, inter, dst);
    case NIFTI_TYPE_INT32: return convert<int32_t>(data, first, n, scaled, slope, inter, dst);
    case NIFTI_TYPE_UINT64: return convert<uint64_t>(data, first, n, scaled, slope, inter, dst);
    case NIFTI_TYPE_INT64: return convert<int64_t>(data, first, n, scaled, slope, inter, dst);
    case NIFTI_TYPE_FLOAT32: return convert<float>(data, first, n, scaled, slope, inter, dst);
    case NIFTI_TYPE_FLOAT64: return convert<double>(data, first, n, scaled, slope, inter, dst);
    // FLOAT128 is the platform's long double, as both niftilib and nibabel read it (x87 extended precision
    // on x86-64); datatype_supported admits it only where long double fills the 16 bytes.
    case NIFTI_TYPE_FLOAT128: return convert<long double>(data, first, n, scaled, slope, inter, dst);
    default: throw std::logic_error("to_float: datatype " + std::to_string(h.datatype) + " passed the check");
  }
}

}  // namespace

bool NiftiHeader::has_scaling() const { return std::isfinite(scl_slope) && scl_slope != 0.0; }

bool datatype_supported(int datatype) {
  switch (datatype) {
    case NIFTI_TYPE_UINT8:
    case NIFTI_TYPE_INT8:
    case NIFTI_TYPE_UINT16:
    case NIFTI_TYPE_INT16:
    case NIFTI_TYPE_UINT32:
    case NIFTI_TYPE_INT32:
    case NIFTI_TYPE_UINT64:
    case NIFTI_TYPE_INT64:
    case NIFTI_TYPE_FLOAT32:
    case NIFTI_TYPE_FLOAT64: return true;
    case NIFTI_TYPE_FLOAT128: return sizeof(long double) == 16;
    default: return false;
  }
}

std::string datatype_name(int datatype) {
  // niftilib answers "DT_UNKNOWN" for codes it does not know.
  return nifti_datatype_string(datatype);
}

std::string xform_name(int code) { return nifti_xform_string(code); }
std::string units_name(int code) { return nifti_units_string(code); }

AxisOrientation axis_orientation(const std::array<std::array<double, 4>, 4>& m) {
  nifti_dmat44 d;
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) d.m[r][c] = m[r][c];
  int codes[3] = {0, 0, 0};
  nifti_dmat44_to_orientation(d, &codes[0], &codes[1], &codes[2]);
  AxisOrientation o;
  for (int a = 0; a < 3; ++a) {
    char letter = '?';
    switch (codes[a]) {
      case NIFTI_L2R: letter = 'R'; break;
      case NIFTI_R2L: letter = 'L'; break;
      case NIFTI_P2A: letter = 'A'; break;
      case NIFTI_A2P: letter = 'P'; break;
      case NIFTI_I2S: letter = 'S'; break;
      case NIFTI_S2I: letter = 'I'; break;
      default: break;
    }
    o.codes += letter;
    o.directions[size_t(a)] = nifti_orientation_string(codes[a]);
  }
  return o;
}

Volume read_volume(const std::string& path, const ReadOptions& options) {
  LoadedImage img = load_image(path);
  const auto& dim = img.header.dim;
  const int64_t ndim = dim[0];
  for (int64_t i = 5; i <= ndim; ++i)
    if (dim[size_t(i)] != 1)
      fail(path, "has " + std::to_string(ndim) + " dimensions with dimension " + std::to_string(i) + " of size " +
                     std::to_string(dim[size_t(i)]) + "; only 3-D volumes and 4-D series can be read");
  const int64_t frames = ndim >= 4 ? dim[4] : 1;
  int64_t frame = 0;
  if (options.frame) {
    frame = *options.frame;
    if (frame < 0 || frame >= frames)
      fail(path, "frame " + std::to_string(frame) + " asked for, but the image has " + std::to_string(frames) +
                     (frames == 1 ? " frame" : " frames"));
  } else if (frames > 1) {
    fail(path, "is a 4-D series of " + std::to_string(frames) + " frames; choose one frame to read");
  }

  Volume v;
  v.path = path;
  v.dims = {dim[1], ndim >= 2 ? dim[2] : 1, ndim >= 3 ? dim[3] : 1};
  v.spacing = {img.header.pixdim[1], img.header.pixdim[2], img.header.pixdim[3]};
  const int64_t n = v.dims[0] * v.dims[1] * v.dims[2];
  v.data.resize(size_t(n));
  to_float(img, frame * n, n, v.data.data());
  v.header = std::move(img.header);
  return v;
}

ImageSummary summarize_image(const std::string& path) {
  LoadedImage img = load_image(path);
  ImageSummary s;
  s.path = path;
  s.voxels = img.voxels;
  // Converted in chunks so a long 4-D series needs no second full-size copy.
  constexpr int64_t kChunk = int64_t(1) << 20;
  std::vector<float> buf(size_t(std::min(kChunk, s.voxels)));
  bool any = false;
  for (int64_t first = 0; first < s.voxels; first += kChunk) {
    const int64_t n = std::min(kChunk, s.voxels - first);
    to_float(img, first, n, buf.data());
    for (int64_t i = 0; i < n; ++i) {
      const float x = buf[size_t(i)];
      if (!std::isfinite(x)) {
        ++s.non_finite;
      } else if (!any) {
        s.min = s.max = x;
        any = true;
      } else {
        s.min = std::min(s.min, double(x));
        s.max = std::max(s.max, double(x));
      }
    }
  }
  s.header = std::move(img.header);
  return s;
}

}  // namespace mriae::io
