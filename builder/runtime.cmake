# The RUN execution layer (user db, OCI runtime spec, runtime runner, overlay
# mounts), added to strata_builder from here so it does not collide with the
# frontend's builder/CMakeLists.txt.
target_sources(strata_builder PRIVATE
  ${PROJECT_SOURCE_DIR}/builder/oci_runtime_runner.cc
  ${PROJECT_SOURCE_DIR}/builder/overlay_mount.cc
  ${PROJECT_SOURCE_DIR}/builder/build_namespace.cc
  ${PROJECT_SOURCE_DIR}/builder/run_network.cc
  ${PROJECT_SOURCE_DIR}/builder/run_reaper.cc
  ${PROJECT_SOURCE_DIR}/builder/runtime_spec.cc
  ${PROJECT_SOURCE_DIR}/builder/seccomp_profile.cc
  ${PROJECT_SOURCE_DIR}/builder/user_db.cc
)
