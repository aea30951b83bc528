// A per-process scratch directory for the fuzz targets that touch the file
// system, removed at exit. Each input gets fresh subdirectories, so a crash
// reproduces from its input alone.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace strata::fuzz {

inline const std::filesystem::path& ScratchDir() {
  static const std::filesystem::path dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "strata-fuzz-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(ScratchDir(), ec);
    });
    return std::filesystem::path(tmpl);
  }();
  return dir;
}

}  // namespace strata::fuzz
