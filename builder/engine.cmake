# The build engine: executor and build cache (target_sources into strata_builder).
target_sources(strata_builder PRIVATE
  ${PROJECT_SOURCE_DIR}/builder/add_archive.cc
  ${PROJECT_SOURCE_DIR}/builder/build_cache.cc
  ${PROJECT_SOURCE_DIR}/builder/executor.cc
  ${PROJECT_SOURCE_DIR}/builder/image_path.cc
)
