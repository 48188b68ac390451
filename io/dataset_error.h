#pragma once
#include <stdexcept>

namespace mriae::io {

// A data set that cannot be built from readable files (bad range, constant or non-finite data, intensities
// outside the model's range under --strict); the message names the file where one is to blame. Unreadable
// files throw NiftiError.
class DatasetError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace mriae::io
