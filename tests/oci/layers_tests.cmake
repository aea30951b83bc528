# Unit tests for the layer pipeline (compression, tar writer, applier,
# whiteouts, snapshots, import/unpack).
add_executable(strata_layer_tests
  ${PROJECT_SOURCE_DIR}/tests/oci/layer_test_util.cc
  ${PROJECT_SOURCE_DIR}/tests/oci/compress_test.cc
  ${PROJECT_SOURCE_DIR}/tests/oci/whiteout_test.cc
  ${PROJECT_SOURCE_DIR}/tests/oci/layer_writer_test.cc
  ${PROJECT_SOURCE_DIR}/tests/oci/layer_reader_test.cc
  ${PROJECT_SOURCE_DIR}/tests/oci/snapshots_test.cc
  ${PROJECT_SOURCE_DIR}/tests/oci/unpack_test.cc
  ${PROJECT_SOURCE_DIR}/tests/oci/import_test.cc
)
target_link_libraries(strata_layer_tests PRIVATE strata_testing strata_oci GTest::gtest_main)
gtest_discover_tests(strata_layer_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

# Real components: umoci unpack of an imported image, overlayfs over snapshots.
add_executable(strata_layer_integration_tests
  ${PROJECT_SOURCE_DIR}/tests/oci/layer_test_util.cc
  ${PROJECT_SOURCE_DIR}/tests/oci/layer_integration_test.cc
)
target_link_libraries(strata_layer_integration_tests PRIVATE strata_testing strata_oci
  GTest::gtest_main)
target_compile_definitions(strata_layer_integration_tests PRIVATE
  STRATA_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
gtest_discover_tests(strata_layer_integration_tests PROPERTIES LABELS integration
  DISCOVERY_TIMEOUT 60)
