# Install rules: the headers, the CMake package (find_package(featx CONFIG)
# gives featx::featx) and featx.pc for pkg-config. docs/packaging.md says how
# to use each.
#
# featx is header-only and nothing installed here depends on the machine's
# architecture (libjpeg and OpenMP are named, not located: the consumer's
# toolchain finds them), so the package files go to share/, not lib/.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(FEATX_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_DATADIR}/cmake/featx)
set(FEATX_PKGCONFIG_INSTALL_DIR ${CMAKE_INSTALL_DATADIR}/pkgconfig)

install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET featx_cli)
  install(TARGETS featx_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

install(TARGETS featx EXPORT featxTargets INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT featxTargets NAMESPACE featx:: DESTINATION ${FEATX_CMAKE_INSTALL_DIR})

configure_package_config_file(cmake/featxConfig.cmake.in ${PROJECT_BINARY_DIR}/featxConfig.cmake
  INSTALL_DESTINATION ${FEATX_CMAKE_INSTALL_DIR})
# 0.x: a minor release may change the API (0.2 brings Plan/run), so only the
# same minor version is compatible; from 1.0 on, the same major version.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(FEATX_VERSION_COMPATIBILITY SameMinorVersion)
else()
  set(FEATX_VERSION_COMPATIBILITY SameMajorVersion)
endif()
write_basic_package_version_file(${PROJECT_BINARY_DIR}/featxConfigVersion.cmake
  COMPATIBILITY ${FEATX_VERSION_COMPATIBILITY} ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/featxConfig.cmake ${PROJECT_BINARY_DIR}/featxConfigVersion.cmake
  DESTINATION ${FEATX_CMAKE_INSTALL_DIR})

# featx.pc. prefix is found from the .pc file's own place, so the tree can be
# installed with `cmake --install --prefix` anywhere, or moved.
file(RELATIVE_PATH FEATX_PC_TO_PREFIX
  /prefix/${FEATX_PKGCONFIG_INSTALL_DIR} /prefix)
string(REGEX REPLACE "/$" "" FEATX_PC_TO_PREFIX "${FEATX_PC_TO_PREFIX}")
set(FEATX_PC_CFLAGS "")
set(FEATX_PC_LIBS "")
# Header folders outside the compiler's own search path (not /usr/include).
set(FEATX_PC_INCLUDE_DIRS ${FLATBUFFERS_INCLUDE_DIR} ${STB_INCLUDE_DIR})
if(FEATX_WITH_LIBJPEG)
  list(APPEND FEATX_PC_INCLUDE_DIRS ${JPEG_INCLUDE_DIRS})
endif()
list(REMOVE_DUPLICATES FEATX_PC_INCLUDE_DIRS)
foreach(dir ${FEATX_PC_INCLUDE_DIRS})
  if(NOT dir IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES)
    string(APPEND FEATX_PC_CFLAGS " -I${dir}")
  endif()
endforeach()
# OpenMP: the flag this compiler took (GCC: -fopenmp) when the build found
# OpenMP; without it featx runs single-threaded. Compiler-specific, like any
# pkg-config flag: docs/packaging.md says how to drop it.
if(FEATX_WITH_OPENMP)
  string(APPEND FEATX_PC_CFLAGS " ${OpenMP_CXX_FLAGS}")
  string(APPEND FEATX_PC_LIBS " ${OpenMP_CXX_FLAGS}")
endif()
if(FEATX_WITH_LIBJPEG)
  string(APPEND FEATX_PC_CFLAGS " -DFEATX_WITH_LIBJPEG")
  if(JPEG_LIBRARY_RELEASE)
    set(jpeg_library ${JPEG_LIBRARY_RELEASE})
  else()
    list(GET JPEG_LIBRARIES 0 jpeg_library)
  endif()
  get_filename_component(jpeg_library_dir "${jpeg_library}" DIRECTORY)
  if(NOT jpeg_library_dir IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
    string(APPEND FEATX_PC_LIBS " -L${jpeg_library_dir}")
  endif()
  string(APPEND FEATX_PC_LIBS " -ljpeg")
endif()
string(STRIP "${FEATX_PC_CFLAGS}" FEATX_PC_CFLAGS)
string(STRIP "${FEATX_PC_LIBS}" FEATX_PC_LIBS)
configure_file(featx.pc.in ${PROJECT_BINARY_DIR}/featx.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/featx.pc DESTINATION ${FEATX_PKGCONFIG_INSTALL_DIR})
