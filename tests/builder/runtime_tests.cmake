# Tests of the RUN execution layer. Unit tests are hermetic; integration tests
# mount overlayfs and run runc (root required), and skip when they cannot.
add_executable(strata_runtime_tests
  ${PROJECT_SOURCE_DIR}/tests/builder/user_db_test.cc
  ${PROJECT_SOURCE_DIR}/tests/builder/runtime_spec_test.cc
  ${PROJECT_SOURCE_DIR}/tests/builder/oci_runtime_runner_test.cc
  ${PROJECT_SOURCE_DIR}/tests/builder/fake_command_runner_test.cc
  ${PROJECT_SOURCE_DIR}/tests/builder/overlay_mount_test.cc
  ${PROJECT_SOURCE_DIR}/tests/builder/run_network_test.cc
  ${PROJECT_SOURCE_DIR}/tests/builder/run_reaper_test.cc
  ${PROJECT_SOURCE_DIR}/tests/builder/seccomp_profile_test.cc
)
target_link_libraries(strata_runtime_tests PRIVATE strata_testing strata_builder GTest::gtest_main)
gtest_discover_tests(strata_runtime_tests PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

add_executable(strata_runtime_integration_tests
  ${PROJECT_SOURCE_DIR}/tests/builder/overlay_mount_integration_test.cc
  ${PROJECT_SOURCE_DIR}/tests/builder/oci_runtime_runner_integration_test.cc
  ${PROJECT_SOURCE_DIR}/tests/builder/run_network_integration_test.cc
)
target_link_libraries(strata_runtime_integration_tests PRIVATE
  strata_testing strata_builder GTest::gtest_main)
target_compile_definitions(strata_runtime_integration_tests PRIVATE
  STRATA_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
gtest_discover_tests(strata_runtime_integration_tests
  PROPERTIES LABELS integration DISCOVERY_TIMEOUT 60)

# The RUN sandbox end to end: `strata build` runs a probe, compared with
# `podman run` of the same probe; a build SIGKILLed during RUN leaves nothing.
add_executable(strata_sandbox_integration_tests
  ${PROJECT_SOURCE_DIR}/tests/builder/sandbox_probe_integration_test.cc
  ${PROJECT_SOURCE_DIR}/tests/builder/build_crash_integration_test.cc
)
target_link_libraries(strata_sandbox_integration_tests PRIVATE strata_testing GTest::gtest_main)
target_compile_definitions(strata_sandbox_integration_tests PRIVATE
  STRATA_BINARY="$<TARGET_FILE:strata>"
  STRATA_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(strata_sandbox_integration_tests strata)
gtest_discover_tests(strata_sandbox_integration_tests
  PROPERTIES LABELS integration TIMEOUT 600 DISCOVERY_TIMEOUT 60)
