# Layer writer/reader, compression, whiteouts, snapshots, import/unpack.
target_sources(strata_oci PRIVATE
  ${PROJECT_SOURCE_DIR}/oci/compress.cc
  ${PROJECT_SOURCE_DIR}/oci/whiteout.cc
  ${PROJECT_SOURCE_DIR}/oci/layer_writer.cc
  ${PROJECT_SOURCE_DIR}/oci/layer_reader.cc
  ${PROJECT_SOURCE_DIR}/oci/snapshots.cc
  ${PROJECT_SOURCE_DIR}/oci/unpack.cc
  ${PROJECT_SOURCE_DIR}/oci/import.cc
)
