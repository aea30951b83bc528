#include "tools/strata/secret_flags.h"

#include <cstdlib>
#include <filesystem>
#include <utility>

#include <fmt/format.h>

#include "oci/util/file_util.h"

namespace strata::cli {
namespace fs = std::filesystem;

Result<std::map<std::string, builder::BuildOptions::Secret>> ParseSecretFlags(
    const std::vector<std::string>& flags) {
  std::map<std::string, builder::BuildOptions::Secret> out;
  for (const auto& sec : flags) {
    // buildx's forms: id=ID,src=PATH (or source=), id=ID,env=VAR, type=file|env,
    // and id=ID alone (the variable ID if set, else the file ID).
    std::string id, src, env, type;
    size_t i = 0;
    while (i <= sec.size()) {
      size_t j = sec.find(',', i);
      if (j == std::string::npos) j = sec.size();
      std::string part = sec.substr(i, j - i);
      i = j + 1;
      size_t eq = part.find('=');
      std::string key = part.substr(0, eq);
      std::string value = eq == std::string::npos ? "" : part.substr(eq + 1);
      if (key == "id") {
        id = value;
      } else if (key == "src" || key == "source") {
        src = value;
      } else if (key == "env") {
        env = value;
      } else if (key == "type" && (value == "file" || value == "env")) {
        type = value;
      } else {
        return Unexpected(
            Error(ErrorCode::kInvalidArgument,
                  fmt::format("--secret {}: unknown or bad field \"{}\" (want id=, src=, "
                              "env=, type=file|env)",
                              sec, part)));
      }
    }
    if (id.empty()) id = !src.empty() ? fs::path(src).filename().string() : env;
    if (id.empty() || (!src.empty() && !env.empty())) {
      return Unexpected(
          Error(ErrorCode::kInvalidArgument,
                fmt::format("--secret {}: want id=ID,src=PATH or id=ID,env=VAR", sec)));
    }
    if (type == "env" && env.empty()) env = !src.empty() ? std::exchange(src, "") : id;
    if (type == "file" && src.empty()) src = id;
    if (src.empty() && env.empty()) {
      // id alone: the environment first, then a file of that name.
      if (std::getenv(id.c_str()) != nullptr) {
        env = id;
      } else {
        src = id;
      }
    }
    builder::BuildOptions::Secret s;
    if (!env.empty()) {
      const char* v = std::getenv(env.c_str());
      if (v == nullptr) {
        return Unexpected(
            Error(ErrorCode::kNotFound,
                  fmt::format("--secret {}: environment variable {} is not set", sec, env)));
      }
      s.value = v;
    } else {
      std::error_code ec;
      if (!fs::is_regular_file(src, ec)) {
        return Unexpected(Error(ErrorCode::kNotFound,
                                fmt::format("--secret {}: {} is not a readable file", sec, src)));
      }
      s.file = src;
    }
    out[id] = std::move(s);
  }
  return out;
}

Result<std::string> SecretValue(const builder::BuildOptions::Secret& s) {
  if (s.value) return *s.value;
  return ReadFile(s.file);
}

}  // namespace strata::cli
