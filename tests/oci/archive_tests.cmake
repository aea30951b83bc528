# Save/load of image archives (oci/archive.h). Unit tests build archives in
# memory; the integration tests hand our store and archives to skopeo, umoci
# and podman, and load what skopeo writes.
add_library(strata_archive_test_util STATIC
  ${PROJECT_SOURCE_DIR}/tests/oci/archive_test_util.cc
)
target_link_libraries(strata_archive_test_util PUBLIC strata_testing strata_oci)

add_executable(strata_archive_tests
  ${PROJECT_SOURCE_DIR}/tests/oci/archive_test.cc
)
target_link_libraries(strata_archive_tests PRIVATE strata_archive_test_util GTest::gtest_main)
gtest_discover_tests(strata_archive_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

add_executable(strata_store_integration_tests
  ${PROJECT_SOURCE_DIR}/tests/oci/archive_integration_test.cc
)
target_link_libraries(strata_store_integration_tests PRIVATE strata_archive_test_util
  GTest::gtest_main)
target_compile_definitions(strata_store_integration_tests PRIVATE
  STRATA_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
  STRATA_BINARY="$<TARGET_FILE:strata>")
add_dependencies(strata_store_integration_tests strata)
gtest_discover_tests(strata_store_integration_tests
  PROPERTIES LABELS integration DISCOVERY_TIMEOUT 60 TIMEOUT 600)
