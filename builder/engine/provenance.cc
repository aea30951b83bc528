#include "builder/engine/provenance.h"

#include <ctime>

#include <fmt/format.h>

#include "oci/reference.h"

namespace strata::builder {

namespace {

std::string PurlEscape(std::string_view s, bool keep_slash) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

}  // namespace

std::string StripUrlUserinfo(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  size_t start = scheme + 3;
  size_t end = url.find_first_of("/?#", start);
  if (end == std::string_view::npos) end = url.size();
  size_t at = url.rfind('@', end - 1);
  if (at == std::string_view::npos || at < start || end == start) return std::string(url);
  std::string out(url.substr(0, start));
  out.append(url.data() + at + 1, url.size() - at - 1);
  return out;
}

std::string ImagePurl(const ResolvedInput& in) {
  std::string name = in.ref;
  std::string version;
  if (auto ref = oci::Reference::Parse(in.ref)) {
    name = ref->domain() + "/" + ref->path();
    if (ref->domain() == "docker.io") {
      name = ref->path().starts_with("library/") ? ref->path().substr(8) : ref->path();
    }
    version = !ref->tag().empty() ? ref->tag() : ref->digest()->ToString();
  }
  std::string purl = fmt::format("pkg:docker/{}", PurlEscape(name, true));
  if (!version.empty()) purl.append("@").append(PurlEscape(version, false));
  if (!in.platform.empty()) purl.append("?platform=").append(PurlEscape(in.platform, false));
  return purl;
}

nlohmann::json ProvenancePredicate(const ProvenanceInput& in) {
  using nlohmann::json;
  json args = json::object();
  for (const auto& [k, v] : in.build_args) args["build-arg:" + k] = v;
  if (!in.target.empty()) args["target"] = in.target;
  json request = {{"frontend", "dockerfile.v0"}, {"args", args}};
  if (!in.secret_ids.empty()) {
    json secrets = json::array();
    std::vector<std::string> ids = in.secret_ids;
    std::sort(ids.begin(), ids.end());
    for (const auto& id : ids) secrets.push_back({{"id", id}});
    request["secrets"] = secrets;
  }
  json external = {{"configSource", {{"path", in.dockerfile_path}}}, {"request", request}};
  json deps = json::array();
  for (const auto& d : in.inputs) {
    if (d.kind == ResolvedInput::Kind::kGit) {
      // SLSA's git convention: git+<remote>#<ref>, the commit as gitCommit
      // (a SHA-1 or SHA-256 object name).
      deps.push_back(
          {{"uri", "git+" + StripUrlUserinfo(d.ref)}, {"digest", {{"gitCommit", d.commit}}}});
      continue;
    }
    json digest = {{std::string(d.digest.algorithm_name()), d.digest.hex()}};
    if (d.kind == ResolvedInput::Kind::kImage) {
      deps.push_back({{"uri", ImagePurl(d)}, {"digest", digest}});
    } else {
      deps.push_back({{"uri", StripUrlUserinfo(d.ref)}, {"digest", digest}});
    }
  }
  json internal = {{"builderPlatform", in.platform}};
  if (in.max) {
    internal["buildConfig"] = in.build_config;
    internal["dockerfile"] = in.dockerfile_text;
  }
  json build_definition = {
      {"buildType", "https://mobyproject.org/buildkit@v1"},
      {"externalParameters", external},
      {"internalParameters", internal},
      {"resolvedDependencies", deps},
  };
  json metadata = {{"startedOn", in.started_on}, {"finishedOn", in.finished_on}};
  json run_details = {
      {"builder", {{"id", in.builder_id}, {"version", {{"strata", in.builder_version}}}}},
      {"metadata", metadata}};
  return {{"buildDefinition", build_definition}, {"runDetails", run_details}};
}

nlohmann::json InTotoStatement(std::string_view subject_name, const oci::Digest& subject,
                               std::string_view predicate_type, nlohmann::json predicate) {
  return {
      {"_type", "https://in-toto.io/Statement/v1"},
      {"subject", nlohmann::json::array(
                      {{{"name", subject_name},
                        {"digest", {{std::string(subject.algorithm_name()), subject.hex()}}}}})},
      {"predicateType", predicate_type},
      {"predicate", std::move(predicate)}};
}

std::string Rfc3339(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace strata::builder
