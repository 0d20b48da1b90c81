// featx/detail/stb_image.hpp: how featx gets stb_image into a header-only build.
//
// Default: stb_image is compiled into every translation unit that includes
// featx, with STB_IMAGE_STATIC so all its functions have internal linkage
// (no duplicate symbols across TUs, no clash with a user's own copy elsewhere).
// This copy is trimmed to what featx needs:
//   STBI_NO_STDIO   featx reads files itself; stb never touches FILE*.
//   STBI_NO_HDR, STBI_NO_LINEAR   no float/HDR paths.
//   STBI_ONLY_{JPEG,PNG,BMP,GIF,TGA}   less code facing untrusted input
//                   (featx decodes PNM itself, see featx/detail/pnm.hpp);
//                   define FEATX_STB_IMAGE_ALL_FORMATS to keep PSD and PIC too.
//   STBI_FAILURE_USERMSG   readable failure reasons for error messages.
// (featx's own size limits are checked on the header before stb decodes, so
// stb's STBI_MAX_DIMENSIONS keeps its default: lowering it would only turn
// "image too large" into stb's vaguer "unknown image type".)
//
// Configuration (define before including any featx header; FEATX_MALLOC,
// FEATX_REALLOC and FEATX_FREE, see featx/detail/allocator_hooks.hpp, become
// STBI_MALLOC, STBI_REALLOC and STBI_FREE unless STBI_MALLOC is set):
//   FEATX_STB_IMAGE_EXTERNAL  you compile stb_image yourself (one .c/.cpp
//                             with STB_IMAGE_IMPLEMENTATION); featx only
//                             includes the declarations. It must have been
//                             built with 16-bit support (the default).
//   FEATX_STB_IMAGE_PATH      header to include, e.g. "third_party/stb_image.h".
//                             Default <stb/stb_image.h> (Debian/Ubuntu
//                             libstb-dev), falling back to "stb_image.h".
// If stb_image.h was already included in this TU before featx, featx uses
// those declarations as if FEATX_STB_IMAGE_EXTERNAL were set (defining the
// implementation a second time would not compile). Including stb_image.h
// with STB_IMAGE_IMPLEMENTATION *after* featx in the same TU does not work:
// use FEATX_STB_IMAGE_EXTERNAL then.
#pragma once

#include "featx/detail/allocator_hooks.hpp"

#if defined(STBI_INCLUDE_STB_IMAGE_H) && !defined(FEATX_STB_IMAGE_EXTERNAL)
#define FEATX_STB_IMAGE_EXTERNAL
#endif

// stb is C code written for many compilers; its warnings are not ours.
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Weverything"
#elif defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wuseless-cast"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wcast-align"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wmissing-declarations"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wduplicated-branches"
#pragma GCC diagnostic ignored "-Wnull-dereference"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wswitch-default"
#pragma GCC diagnostic ignored "-Wstrict-overflow"
#elif defined(_MSC_VER)
#pragma warning(push, 0)
#endif

#ifndef FEATX_STB_IMAGE_EXTERNAL
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#ifndef FEATX_STB_IMAGE_ALL_FORMATS
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_ONLY_TGA
#endif
#ifndef STBI_FAILURE_USERMSG
#define STBI_FAILURE_USERMSG
#endif
// featx's allocator hooks (featx/detail/allocator_hooks.hpp) reach stb too.
#if defined(FEATX_MALLOC) && !defined(STBI_MALLOC)
#define STBI_MALLOC(bytes) FEATX_MALLOC(bytes)
#define STBI_REALLOC(ptr, bytes) FEATX_REALLOC(ptr, bytes)
#define STBI_FREE(ptr) FEATX_FREE(ptr)
#endif
#endif  // FEATX_STB_IMAGE_EXTERNAL

#if defined(FEATX_STB_IMAGE_PATH)
#include FEATX_STB_IMAGE_PATH
#elif defined(STBI_INCLUDE_STB_IMAGE_H)
// Already included by the user: nothing to do.
#else
// The single header (tools/make_single_header.py) puts stb_image.h itself
// between these two markers.
// featx-single-header: inline stb/stb_image.h
#if defined(__has_include)
#if __has_include(<stb/stb_image.h>)
#include <stb/stb_image.h>
#elif __has_include("stb_image.h")
#include "stb_image.h"
#else
#error "featx: stb_image.h not found; install libstb-dev or define FEATX_STB_IMAGE_PATH"
#endif
#else
#include <stb/stb_image.h>
#endif
// featx-single-header: end
#endif

// The implementation section of stb_image.h has no include guard: make sure a
// later #include of it in this TU does not compile it a second time.
#ifndef FEATX_STB_IMAGE_EXTERNAL
#undef STB_IMAGE_IMPLEMENTATION
#endif

#if defined(__clang__)
#pragma clang diagnostic pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#elif defined(_MSC_VER)
#pragma warning(pop)
#endif
