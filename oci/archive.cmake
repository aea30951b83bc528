# Image archives: save/load of oci-archive and docker-archive files and OCI
# layout directories (oci/archive.h).
target_sources(strata_oci PRIVATE
  ${PROJECT_SOURCE_DIR}/oci/archive.cc
)
