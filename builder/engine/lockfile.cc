#include "builder/engine/lockfile.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "oci/digest.h"
#include "oci/json_util.h"

namespace strata::builder {

namespace {

Status Bad(std::string_view where, std::string_view what) {
  return MakeError(ErrorCode::kInvalidArgument, "{}: {}", where, what);
}

Result<std::map<std::string, std::string>> DigestMap(const nlohmann::json& j,
                                                     std::string_view where,
                                                     std::string_view section) {
  std::map<std::string, std::string> out;
  if (!j.is_object()) {
    return Unexpected(Bad(where, fmt::format("\"{}\" must be an object", section)).error());
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_string()) {
      return Unexpected(
          Bad(where, fmt::format("{} \"{}\": the pin must be a string", section, it.key()))
              .error());
    }
    out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

}  // namespace

Result<Lockfile> Lockfile::Parse(std::string_view text, std::string_view where) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Unexpected(Bad(where, "not a JSON object").error());
  }
  Lockfile lf;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "version") {
      if (!it.value().is_number_integer() || it.value().get<int>() != 1) {
        return Unexpected(Bad(where, "unsupported version (want 1)").error());
      }
    } else if (k == "images") {
      if (!it.value().is_object())
        return Unexpected(Bad(where, "\"images\" must be an object").error());
      for (auto im = it.value().begin(); im != it.value().end(); ++im) {
        STRATA_ASSIGN_OR_RETURN(auto per, DigestMap(im.value(), where, "image " + im.key()));
        for (const auto& [p, d] : per) {
          if (!oci::Digest::Parse(d)) {
            return Unexpected(
                Bad(where, fmt::format("image {} {}: bad digest {}", im.key(), p, d)).error());
          }
        }
        lf.images[im.key()] = std::move(per);
      }
    } else if (k == "urls") {
      STRATA_ASSIGN_OR_RETURN(lf.urls, DigestMap(it.value(), where, "urls"));
    } else if (k == "git") {
      STRATA_ASSIGN_OR_RETURN(lf.git, DigestMap(it.value(), where, "git"));
    } else {
      return Unexpected(
          Bad(where, fmt::format("unknown key \"{}\" (a newer strata's lockfile?)", k)).error());
    }
  }
  if (!j.contains("version")) return Unexpected(Bad(where, "no \"version\"").error());
  return lf;
}

std::string Lockfile::Serialize() const {
  nlohmann::json j = {{"version", 1},
                      {"images", nlohmann::json::object()},
                      {"urls", nlohmann::json::object()},
                      {"git", nlohmann::json::object()}};
  for (const auto& [ref, per] : images) {
    for (const auto& [p, d] : per) j["images"][ref][p] = d;
  }
  for (const auto& [u, d] : urls) j["urls"][u] = d;
  for (const auto& [g, c] : git) j["git"][g] = c;
  return j.dump(2) + "\n";
}

void Lockfile::Update(const std::vector<ResolvedInput>& inputs) {
  for (const auto& in : inputs) {
    if (in.kind == ResolvedInput::Kind::kImage) {
      images[in.ref][in.platform] = in.digest.ToString();
    } else if (in.kind == ResolvedInput::Kind::kGit) {
      git[in.ref] = in.commit;
    } else {
      urls[in.ref] = in.digest.ToString();
    }
  }
}

Status Lockfile::Check(const ResolvedInput& in) const {
  if (in.kind == ResolvedInput::Kind::kImage) {
    auto it = images.find(in.ref);
    auto pin = it == images.end() ? nullptr : &it->second;
    auto p = pin ? pin->find(in.platform) : std::map<std::string, std::string>::const_iterator();
    if (!pin || p == pin->end()) {
      return MakeError(ErrorCode::kFailedPrecondition,
                       "image {} ({}) is not pinned in {} (run with --update-lock)", in.ref,
                       in.platform, kLockfileName);
    }
    if (p->second != in.digest.ToString()) {
      return MakeError(ErrorCode::kFailedPrecondition,
                       "image {} ({}) moved: {} pins {}, it now resolves to {} (run with "
                       "--update-lock to accept)",
                       in.ref, in.platform, kLockfileName, p->second, in.digest.ToString());
    }
    return OkStatus();
  }
  if (in.kind == ResolvedInput::Kind::kGit) {
    auto g = git.find(in.ref);
    if (g == git.end()) {
      return MakeError(ErrorCode::kFailedPrecondition,
                       "git {} is not pinned in {} (run with --update-lock)", in.ref,
                       kLockfileName);
    }
    if (g->second != in.commit) {
      return MakeError(ErrorCode::kFailedPrecondition,
                       "git {} moved: {} pins commit {}, it now resolves to {} (run with "
                       "--update-lock to accept)",
                       in.ref, kLockfileName, g->second, in.commit);
    }
    return OkStatus();
  }
  auto it = urls.find(in.ref);
  if (it == urls.end()) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "ADD {} is not pinned in {} (run with --update-lock)", in.ref, kLockfileName);
  }
  if (it->second != in.digest.ToString()) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "ADD {} changed: {} pins {}, it now serves {} (run with --update-lock to "
                     "accept)",
                     in.ref, kLockfileName, it->second, in.digest.ToString());
  }
  return OkStatus();
}

}  // namespace strata::builder
