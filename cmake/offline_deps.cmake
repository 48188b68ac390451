# MRIAE_DEPS_DIR: the prefix scripts/offline-deps.sh fills (include/, lib/, lib/cmake/, share/cmake/: niftilib,
# zlib, CLI11, nlohmann-json, doctest, unpacked from Debian's packages) for a machine without a package
# registry. Its packages are searched before the system's, and its lib/ goes into the run path of every
# binary, so they load its libraries without LD_LIBRARY_PATH.
set(MRIAE_DEPS_DIR "" CACHE PATH "Prefix made by scripts/offline-deps.sh (absolute, or relative to the source directory)")
if(MRIAE_DEPS_DIR)
  get_filename_component(MRIAE_DEPS_DIR "${MRIAE_DEPS_DIR}" ABSOLUTE BASE_DIR "${PROJECT_SOURCE_DIR}")
  if(NOT EXISTS "${MRIAE_DEPS_DIR}/manifest.tsv")
    message(FATAL_ERROR "MRIAE_DEPS_DIR=${MRIAE_DEPS_DIR} has no manifest.tsv: it is not a directory made by "
                        "scripts/offline-deps.sh")
  endif()
  list(PREPEND CMAKE_PREFIX_PATH "${MRIAE_DEPS_DIR}")
  if(EXISTS "${MRIAE_DEPS_DIR}/include/zlib.h")
    set(ZLIB_ROOT "${MRIAE_DEPS_DIR}")  # FindZLIB: the bundle's zlib.h and libz.so, not a half-present system one
  endif()
  list(APPEND CMAKE_BUILD_RPATH "${MRIAE_DEPS_DIR}/lib")
  list(APPEND CMAKE_INSTALL_RPATH "${MRIAE_DEPS_DIR}/lib")
  message(STATUS "mriae: dependencies from ${MRIAE_DEPS_DIR} first")
endif()
