# Finds NCCL 2 the way cmake/cudnn.cmake finds cuDNN: NCCL_INCLUDE_DIR (nccl.h) and NCCL_LIBRARY (libnccl.so,
# or libnccl.so.2 alone, as the pip wheel nvidia-nccl-cu13 ships it). NCCL_ROOT (cache or environment
# variable): a prefix, the wheel's site-packages/nvidia/nccl, or a venv holding it. Without it: the CUDA
# toolkit and the system, then the wheel in the site-packages of python3 on PATH. Sets MRIAE_NCCL_FOUND.
set(NCCL_ROOT "$ENV{NCCL_ROOT}" CACHE PATH "Where NCCL is: a prefix, nvidia/nccl of the pip wheel, or a venv holding it")

set(nccl_roots "")
if(NCCL_ROOT)
  file(GLOB wheels "${NCCL_ROOT}/nvidia/nccl" "${NCCL_ROOT}/lib/python3*/site-packages/nvidia/nccl")
  set(nccl_roots "${NCCL_ROOT}" ${wheels})
else()
  set(nccl_roots ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT})
  find_program(MRIAE_PYTHON3 python3)
  if(MRIAE_PYTHON3)
    execute_process(COMMAND "${MRIAE_PYTHON3}" -c
                    "import site; print(';'.join(site.getsitepackages() + [site.getusersitepackages()]))"
                    OUTPUT_VARIABLE sites OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    foreach(s IN LISTS sites)
      list(APPEND nccl_roots "${s}/nvidia/nccl")
    endforeach()
  endif()
endif()
find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${nccl_roots} PATH_SUFFIXES include)
find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${nccl_roots} PATH_SUFFIXES lib lib64)
if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
  set(MRIAE_NCCL_FOUND ON)
  get_filename_component(NCCL_LIBRARY_DIR "${NCCL_LIBRARY}" DIRECTORY)
  list(APPEND CMAKE_BUILD_RPATH "${NCCL_LIBRARY_DIR}")
  list(APPEND CMAKE_INSTALL_RPATH "${NCCL_LIBRARY_DIR}")
  message(STATUS "mriae: NCCL: ${NCCL_INCLUDE_DIR}/nccl.h, ${NCCL_LIBRARY}")
else()
  set(MRIAE_NCCL_FOUND OFF)
  message(STATUS "mriae: NCCL not found (tried ${nccl_roots}): multi-rank GPU training is left out")
endif()
