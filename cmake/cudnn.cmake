# Finds cuDNN 9: CUDNN_INCLUDE_DIR (cudnn.h) and CUDNN_LIBRARY (libcudnn.so, or libcudnn.so.9 alone: the
# pip wheel nvidia-cudnn-cu13 ships no unversioned name).
#
# CUDNN_ROOT (cache variable, or the environment variable) names where to look, and then nowhere else: a
# prefix with include/ and lib/, the wheel's own directory (site-packages/nvidia/cudnn), a site-packages
# directory, or a virtual environment holding the wheel. Without it: the CUDA toolkit and the system first
# (as before), then the wheel in the site-packages of python3 on PATH.
set(CUDNN_ROOT "$ENV{CUDNN_ROOT}" CACHE PATH "Where cuDNN is: a prefix, nvidia/cudnn of the pip wheel, or a venv holding it")

# The directories under DIR that may hold cuDNN's include/ and lib/.
function(mriae_cudnn_candidates dir out)
  file(GLOB wheels "${dir}/nvidia/cudnn" "${dir}/site-packages/nvidia/cudnn"
       "${dir}/lib/python3*/site-packages/nvidia/cudnn" "${dir}/lib64/python3*/site-packages/nvidia/cudnn")
  set(${out} "${dir}" ${wheels} PARENT_SCOPE)
endfunction()

function(mriae_find_cudnn_in roots)
  find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${roots} PATH_SUFFIXES include NO_DEFAULT_PATH)
  find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 HINTS ${roots} PATH_SUFFIXES lib lib64 NO_DEFAULT_PATH)
endfunction()

# A changed CUDNN_ROOT searches again rather than keeping what the last configure found.
if(NOT "${CUDNN_ROOT}" STREQUAL "${MRIAE_CUDNN_ROOT_SEARCHED}")
  unset(CUDNN_INCLUDE_DIR CACHE)
  unset(CUDNN_LIBRARY CACHE)
  set(MRIAE_CUDNN_ROOT_SEARCHED "${CUDNN_ROOT}" CACHE INTERNAL "CUDNN_ROOT of the last search")
endif()
if(CUDNN_ROOT)
  mriae_cudnn_candidates("${CUDNN_ROOT}" roots)
  mriae_find_cudnn_in("${roots}")
  set(where "under CUDNN_ROOT=${CUDNN_ROOT} (tried: ${roots})")
else()
  find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9
               HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib ${CUDAToolkit_LIBRARY_ROOT}/lib64)
  set(where "in the CUDA toolkit, the system")
  if(NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
    find_program(MRIAE_PYTHON3 python3)
    set(sites "")
    if(MRIAE_PYTHON3)
      execute_process(COMMAND "${MRIAE_PYTHON3}" -c
                      "import site; print(';'.join(site.getsitepackages() + [site.getusersitepackages()]))"
                      OUTPUT_VARIABLE sites OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    endif()
    set(roots "")
    foreach(s IN LISTS sites)
      list(APPEND roots "${s}/nvidia/cudnn")
    endforeach()
    if(roots)
      unset(CUDNN_INCLUDE_DIR CACHE)
      unset(CUDNN_LIBRARY CACHE)
      mriae_find_cudnn_in("${roots}")
    endif()
    string(APPEND where ", or the nvidia-cudnn-cu13 wheel of ${MRIAE_PYTHON3} (tried: ${roots})")
  endif()
endif()
if(NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
  message(FATAL_ERROR "cuDNN 9 not found ${where}: cudnn.h '${CUDNN_INCLUDE_DIR}', library '${CUDNN_LIBRARY}'. "
                      "Set CUDNN_ROOT to a cuDNN prefix or to a venv with 'pip install nvidia-cudnn-cu13'.")
endif()

file(STRINGS "${CUDNN_INCLUDE_DIR}/cudnn_version.h" version_lines REGEX "^#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ")
set(CUDNN_VERSION "")
foreach(line IN LISTS version_lines)
  string(REGEX REPLACE "^#define CUDNN_[A-Z]+ +([0-9]+).*" "\\1" n "${line}")
  string(APPEND CUDNN_VERSION "${n}.")
endforeach()
string(REGEX REPLACE "\\.$" "" CUDNN_VERSION "${CUDNN_VERSION}")
if(NOT CUDNN_VERSION MATCHES "^9\\.")
  message(FATAL_ERROR "cuDNN 9 is needed; ${CUDNN_INCLUDE_DIR}/cudnn_version.h says '${CUDNN_VERSION}'")
endif()
# The library's directory goes into the run path: the wheel's is on no loader path.
get_filename_component(CUDNN_LIBRARY_DIR "${CUDNN_LIBRARY}" DIRECTORY)
list(APPEND CMAKE_BUILD_RPATH "${CUDNN_LIBRARY_DIR}")
list(APPEND CMAKE_INSTALL_RPATH "${CUDNN_LIBRARY_DIR}")
message(STATUS "mriae: cuDNN ${CUDNN_VERSION}: ${CUDNN_INCLUDE_DIR}/cudnn.h, ${CUDNN_LIBRARY}")
