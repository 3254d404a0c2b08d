# Cross-compiling for 64-bit Windows with mingw-w64 (Debian: apt-get install
# mingw-w64). Everything is linked statically (libgcc, winpthreads), so the
# programs need no DLL beside them: wine and a bare Windows run them as they
# are.
#   cmake -S . -B build-mingw --toolchain cmake/toolchain-mingw-w64.cmake
# or the `mingw` preset (CMakePresets.json); `make test-windows` runs the
# Windows tests under wine.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(RIPC_MINGW_TRIPLE x86_64-w64-mingw32)
find_program(CMAKE_C_COMPILER NAMES ${RIPC_MINGW_TRIPLE}-gcc-posix ${RIPC_MINGW_TRIPLE}-gcc REQUIRED)
find_program(CMAKE_CXX_COMPILER NAMES ${RIPC_MINGW_TRIPLE}-g++-posix ${RIPC_MINGW_TRIPLE}-g++)
find_program(CMAKE_RC_COMPILER NAMES ${RIPC_MINGW_TRIPLE}-windres)

# Look for libraries and headers in the target's tree only; programs (the
# build's tools) on the host.
set(CMAKE_FIND_ROOT_PATH /usr/${RIPC_MINGW_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# The static runtime: libgcc, libstdc++ and winpthreads inside each program.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc")

# Where ctest finds wine when the build runs on Linux (make test-windows);
# a build on Windows itself runs the programs directly.
if(CMAKE_HOST_UNIX AND NOT DEFINED CMAKE_CROSSCOMPILING_EMULATOR)
  find_program(RIPC_WINE NAMES wine wine64)
  if(RIPC_WINE)
    set(CMAKE_CROSSCOMPILING_EMULATOR ${RIPC_WINE})
  endif()
endif()
