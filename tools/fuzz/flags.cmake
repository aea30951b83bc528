# Included by the top-level CMakeLists.txt when STRATA_FUZZ=ON, before any
# library: everything is compiled with libFuzzer's coverage instrumentation
# and ASan+UBSan; the targets in tools/fuzz/ link the fuzzer's main.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "STRATA_FUZZ needs clang: configure with CC=clang-16 CXX=clang++-16")
endif()
# strata uses std::expected from libstdc++ 12. libstdc++ only declares it when
# __cpp_concepts >= 202002L, and its destructors rely on conditionally trivial
# special members (P0848), which clang implements from 16 on while still
# advertising __cpp_concepts 201907L (up to clang 18). So clang 14/15 cannot
# compile strata at all, and clang 16-18 need the macro raised.
if(CMAKE_CXX_COMPILER_VERSION VERSION_LESS 16)
  message(FATAL_ERROR "clang ${CMAKE_CXX_COMPILER_VERSION} cannot compile libstdc++'s "
                      "std::expected (no P0848); use clang-16 (Debian: clang-16 libclang-rt-16-dev)")
endif()
if(CMAKE_CXX_COMPILER_VERSION VERSION_LESS 19)
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-U__cpp_concepts>
                      $<$<COMPILE_LANGUAGE:CXX>:-D__cpp_concepts=202002L>)
endif()
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                    -fno-sanitize-recover=undefined -g)
add_link_options(-fsanitize=address,undefined)
