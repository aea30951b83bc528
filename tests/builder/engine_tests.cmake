# Unit tests of the build engine's pure parts (paths, chmod, cache records).
add_executable(strata_engine_tests
  ${PROJECT_SOURCE_DIR}/tests/builder/image_path_test.cc
  ${PROJECT_SOURCE_DIR}/tests/builder/build_cache_test.cc
  ${PROJECT_SOURCE_DIR}/tests/builder/add_archive_test.cc
)
target_link_libraries(strata_engine_tests PRIVATE strata_testing strata_builder GTest::gtest_main)
gtest_discover_tests(strata_engine_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
