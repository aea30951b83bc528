// build --sbom / --provenance end to end under the strata binary: the
// attestations are stored as referrers, pushed to a real CNCF Distribution
// registry (2.8: no referrers API, so through the referrers tag schema),
// read back from a fresh store with `strata attest`, and skopeo / podman
// still see an ordinary image. The SBOM of an image whose dpkg database is
// this host's (Debian) lists every package dpkg-query lists, with versions.
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <string>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "oci/digest.h"
#include "oci/util/file_util.h"
#include "tests/registry/registry_fixture.h"
#include "tests/testing/test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using ::strata::testing::CommandResult;
using ::strata::testing::RunCommand;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Q(const fs::path& p) { return fmt::format("'{}'", p.string()); }

class AttestIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (strata build)";
    static int counter = 0;
    owner_ = fs::path("/tmp") /
             fmt::format("strata-attest-it-{}-{}-{}", ::getpid(), ++counter,
                         std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
    (void)RemoveAll(owner_);
    ASSERT_OK(MakeDirs(owner_));
    root_ = owner_ / "store";
    // busybox plus this host's dpkg database: a "Debian-based" base image
    // whose package list dpkg-query can tell independently.
    fs::path rootfs = owner_ / "rootfs";
    auto r =
        RunCommand(std::string(STRATA_SOURCE_DIR) + "/tools/make-busybox-rootfs.sh " + Q(rootfs));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_OK(MakeDirs(rootfs / "var/lib/dpkg"));
    auto status = ReadFile("/var/lib/dpkg/status");
    ASSERT_OK(status);
    ASSERT_OK(WriteFileAtomic(rootfs / "var/lib/dpkg/status", *status));
    ASSERT_OK(WriteFileAtomic(rootfs / "etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"));
    r = Strata("import " + Q(rootfs) + " base:1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  void TearDown() override {
    if (!owner_.empty()) (void)RemoveAll(owner_);
  }

  CommandResult Strata(const std::string& args) {
    return RunCommand(std::string(STRATA_BINARY) + " --root " + Q(root_) + " " + args);
  }

  // Builds; returns the printed image ID; stderr in err_.
  std::string Build(const std::string& flags, const std::string& dockerfile) {
    fs::path ctx = owner_ / "ctx";
    testing::WriteTestFile(ctx / "Dockerfile", dockerfile);
    // RunCommand adds 2>&1 after the command: the group keeps ours.
    auto r = RunCommand("{ SOURCE_DATE_EPOCH=1700000000 " + std::string(STRATA_BINARY) +
                        " --root " + Q(root_) + " build --progress plain " + flags + " " + Q(ctx) +
                        " 2>" + Q(owner_ / "err.txt") + "; }");
    auto err = ReadFile(owner_ / "err.txt");
    err_ = err ? *err : "";
    EXPECT_EQ(r.exit_code, 0) << r.output << err_;
    std::string out = r.output;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    auto nl = out.rfind('\n');
    return nl == std::string::npos ? out : out.substr(nl + 1);
  }

  nlohmann::json Json(const std::string& text) {
    return nlohmann::json::parse(text, nullptr, false);
  }

  // package -> version, as dpkg-query lists this host's installed packages.
  static std::map<std::string, std::string> HostPackages() {
    auto r = RunCommand(
        "dpkg-query -W -f '${db:Status-Status} ${Package} ${Version}\\n' | "
        "awk '$1 == \"installed\" {print $2, $3}'");
    std::map<std::string, std::string> out;
    size_t i = 0;
    while (i < r.output.size()) {
      size_t j = r.output.find('\n', i);
      if (j == std::string::npos) j = r.output.size();
      std::string line = r.output.substr(i, j - i);
      i = j + 1;
      size_t sp = line.find(' ');
      if (sp != std::string::npos) out[line.substr(0, sp)] = line.substr(sp + 1);
    }
    return out;
  }

  fs::path owner_;
  fs::path root_;
  std::string err_;
};

TEST_F(AttestIntegrationTest, PushedAttestationsReadBackThroughTheTagSchema) {
  registry::testing::RegistryProcess reg({});
  ASSERT_TRUE(reg.ok()) << reg.error();
  const std::string host = reg.host();
  const std::string ref = host + "/team/app:1";
  const std::string id =
      Build("--tls-verify=false --sbom --provenance=mode=max --build-arg V=2 --push -t " + ref,
            "FROM base:1\nARG V=1\nRUN echo hi > /x\n");
  ASSERT_THAT(id, ::testing::StartsWith("sha256:"));
  const std::string hex = id.substr(7);
  EXPECT_THAT(err_, HasSubstr("Pushed 2 attestation(s)"));
  EXPECT_THAT(err_, HasSubstr("referrers tag sha256-" + hex));
  // The tag-schema index, as any client sees it.
  auto raw = RunCommand("skopeo inspect --raw --tls-verify=false docker://" + host +
                        "/team/app:sha256-" + hex + " 2>&1");
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  auto idx = Json(raw.output);
  ASSERT_TRUE(idx.is_object()) << raw.output;
  ASSERT_EQ(idx["manifests"].size(), 2u);
  std::set<std::string> types;
  for (const auto& m : idx["manifests"]) types.insert(m.value("artifactType", ""));
  EXPECT_EQ(types, (std::set<std::string>{"application/spdx+json",
                                          "application/vnd.in-toto.provenance+json"}));
  // skopeo and podman still see an ordinary image.
  auto sk = RunCommand("skopeo inspect --tls-verify=false docker://" + ref + " 2>&1");
  ASSERT_EQ(sk.exit_code, 0) << sk.output;
  EXPECT_EQ(Json(sk.output).value("Digest", ""), id);
  const fs::path proot = owner_ / "podman";
  auto pull = RunCommand("podman --root " + Q(proot / "root") + " --runroot " + Q(proot / "run") +
                         " --storage-driver vfs pull --tls-verify=false " + ref + " 2>&1");
  EXPECT_EQ(pull.exit_code, 0) << pull.output;
  // A fresh store: `attest` reads from the registry.
  root_ = owner_ / "fresh";
  auto ls = Strata("--tls-verify=false attest ls " + ref + " 2>&1");
  ASSERT_EQ(ls.exit_code, 0) << ls.output;
  EXPECT_THAT(ls.output, HasSubstr("sbom\treferrer"));
  EXPECT_THAT(ls.output, HasSubstr("provenance\treferrer"));
  auto sbom = Strata("--tls-verify=false attest get " + ref + " --type sbom 2>/dev/null");
  ASSERT_EQ(sbom.exit_code, 0) << sbom.output;
  auto stmt = Json(sbom.output);
  ASSERT_TRUE(stmt.is_object()) << sbom.output.substr(0, 500);
  EXPECT_EQ(stmt["_type"], "https://in-toto.io/Statement/v1");
  EXPECT_EQ(stmt["subject"][0]["digest"]["sha256"], hex);
  EXPECT_EQ(stmt["predicateType"], "https://spdx.dev/Document");
  const auto& doc = stmt["predicate"];
  EXPECT_EQ(doc["spdxVersion"], "SPDX-2.3");
  std::map<std::string, std::string> listed;
  for (const auto& p : doc["packages"]) {
    if (p["SPDXID"] == "SPDXRef-Image") continue;
    listed[p["name"].get<std::string>()] = p["versionInfo"].get<std::string>();
  }
  auto host_pkgs = HostPackages();
  ASSERT_GT(host_pkgs.size(), 20u);
  EXPECT_EQ(listed, host_pkgs);
  auto prov = Strata("--tls-verify=false attest get " + ref + " --type provenance 2>/dev/null");
  ASSERT_EQ(prov.exit_code, 0) << prov.output;
  auto p = Json(prov.output);
  ASSERT_TRUE(p.is_object());
  EXPECT_EQ(p["predicateType"], "https://slsa.dev/provenance/v1");
  const auto& def = p["predicate"]["buildDefinition"];
  EXPECT_EQ(def["externalParameters"]["request"]["args"]["build-arg:V"], "2");
  EXPECT_EQ(def["internalParameters"]["dockerfile"], "FROM base:1\nARG V=1\nRUN echo hi > /x\n");
  ASSERT_EQ(def["resolvedDependencies"].size(), 1u);
  EXPECT_THAT(def["resolvedDependencies"][0]["uri"].get<std::string>(),
              HasSubstr("pkg:docker/base@1"));
}

TEST_F(AttestIntegrationTest, LocalAttestationsSurvivePruneWhileTaggedAndNoSecretLeaks) {
  testing::WriteTestFile(owner_ / "secret.txt", "hunter2-very-secret");
  const std::string id = Build(
      "--sbom=true --provenance=true --secret id=tok,src=" + (owner_ / "secret.txt").string() +
          " -t app:1",
      "FROM base:1\nRUN --mount=type=secret,id=tok cat /run/secrets/tok >/dev/null && "
      "echo ok > /y\n");
  ASSERT_THAT(id, ::testing::StartsWith("sha256:"));
  auto prune = Strata("prune 2>&1");
  ASSERT_EQ(prune.exit_code, 0) << prune.output;
  auto prov = Strata("attest get app:1 --type provenance 2>&1");
  ASSERT_EQ(prov.exit_code, 0) << prov.output;
  EXPECT_THAT(prov.output, HasSubstr("\"id\":\"tok\""));
  EXPECT_THAT(prov.output, Not(HasSubstr("hunter2")));
  EXPECT_THAT(prov.output, Not(HasSubstr("secret.txt")));
  auto sbom = Strata("attest get app:1 --type sbom 2>&1");
  ASSERT_EQ(sbom.exit_code, 0) << sbom.output;
  auto fsck = Strata("fsck 2>&1");
  EXPECT_EQ(fsck.exit_code, 0) << fsck.output;
  // Untagged, the next prune reclaims the attestations with the image.
  ASSERT_EQ(Strata("rmi app:1 2>&1").exit_code, 0);
  ASSERT_EQ(Strata("prune 2>&1").exit_code, 0);
  auto gone = Strata("attest ls " + id + " 2>&1");
  EXPECT_NE(gone.exit_code, 0) << gone.output;
}

TEST_F(AttestIntegrationTest, BuildkitFormatPutsAttestationsInTheIndex) {
  registry::testing::RegistryProcess reg({});
  ASSERT_TRUE(reg.ok()) << reg.error();
  const std::string ref = reg.host() + "/team/bk:1";
  const std::string id = Build(
      "--tls-verify=false --sbom --provenance --attest-format buildkit "
      "--push -t " +
          ref,
      "FROM base:1\nRUN echo bk > /z\n");
  ASSERT_THAT(id, ::testing::StartsWith("sha256:"));
  auto ls = Strata("attest ls app:1 2>&1");
  auto local = Strata("attest ls " + ref + " 2>&1");
  ASSERT_EQ(local.exit_code, 0) << local.output;
  EXPECT_THAT(local.output, HasSubstr("sbom\tbuildkit"));
  EXPECT_THAT(local.output, HasSubstr("provenance\tbuildkit"));
  auto raw = RunCommand("skopeo inspect --raw --tls-verify=false docker://" + ref + " 2>&1");
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  auto idx = Json(raw.output);
  ASSERT_TRUE(idx.is_object()) << raw.output;
  ASSERT_EQ(idx["manifests"].size(), 2u);
  EXPECT_EQ(idx["manifests"][0]["digest"], id);
  EXPECT_EQ(idx["manifests"][1]["annotations"]["vnd.docker.reference.type"],
            "attestation-manifest");
  EXPECT_EQ(idx["manifests"][1]["annotations"]["vnd.docker.reference.digest"], id);
  EXPECT_EQ(idx["manifests"][1]["platform"]["os"], "unknown");
  const fs::path proot = owner_ / "podman";
  auto pull = RunCommand("podman --root " + Q(proot / "root") + " --runroot " + Q(proot / "run") +
                         " --storage-driver vfs pull --tls-verify=false " + ref + " 2>&1");
  EXPECT_EQ(pull.exit_code, 0) << pull.output;
  root_ = owner_ / "fresh";
  auto remote = Strata("--tls-verify=false attest get " + ref + " --type provenance 2>&1");
  ASSERT_EQ(remote.exit_code, 0) << remote.output;
  EXPECT_THAT(remote.output, HasSubstr("https://slsa.dev/provenance/v1"));
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

TEST_F(AttestIntegrationTest, CheckReproducibleNamesTheFirstDifferingFile) {
  // Reproducible with SOURCE_DATE_EPOCH: the second build in a fresh store
  // gives the same image.
  Build("--check-reproducible -t rep:1", "FROM base:1\nRUN echo hi > /x && mkdir -p /d\n");
  EXPECT_THAT(err_, HasSubstr("Reproducible: a second build gave the same image"));
  // The date in a file: named, with the kind of difference; nothing tagged
  // changes in the store and the temporary store is gone.
  fs::path ctx = owner_ / "ctx2";
  testing::WriteTestFile(ctx / "Dockerfile", "FROM base:1\nRUN date +%s > /etc/stamp && sleep 1\n");
  auto r = RunCommand("SOURCE_DATE_EPOCH=1700000000 " + std::string(STRATA_BINARY) + " --root " +
                      Q(root_) + " build -q --check-reproducible -t stamp:1 " + Q(ctx));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("not reproducible"));
  EXPECT_THAT(r.output, HasSubstr("/etc/stamp: content differs"));
  // Without SOURCE_DATE_EPOCH the files' times differ: named as mtime.
  fs::path ctx3 = owner_ / "ctx3";
  testing::WriteTestFile(ctx3 / "Dockerfile", "FROM base:1\nRUN echo same > /same && sleep 1\n");
  auto m = RunCommand("env -u SOURCE_DATE_EPOCH " + std::string(STRATA_BINARY) + " --root " +
                      Q(root_) + " build -q --check-reproducible " + Q(ctx3));
  EXPECT_EQ(m.exit_code, 1) << m.output;
  EXPECT_THAT(m.output, HasSubstr("/same: mtime"));
  std::error_code ec;
  size_t leftovers = 0;
  for (const auto& e : fs::directory_iterator(root_ / "ingest", ec)) {
    if (e.path().filename().string().starts_with("repro-")) ++leftovers;
  }
  EXPECT_EQ(leftovers, 0u);
  auto fsck = Strata("fsck 2>&1");
  EXPECT_EQ(fsck.exit_code, 0) << fsck.output;
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

TEST_F(AttestIntegrationTest, LockfileRoundTripsAndAMovedTagFailsLocked) {
  fs::path ctx = owner_ / "lockctx";
  // A stage the target does not need: its base is pinned too.
  ASSERT_EQ(Strata("tag base:1 tools:1 2>&1").exit_code, 0);
  testing::WriteTestFile(ctx / "Dockerfile",
                         "FROM tools:1 AS tools\nRUN false\nFROM base:1\nRUN echo locked > /l\n");
  auto run = [&](const std::string& flags) {
    return RunCommand(std::string(STRATA_BINARY) + " --root " + Q(root_) + " build -q " + flags +
                      " " + Q(ctx));
  };
  auto r = run("--lock");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto lock = ReadFile(ctx / "strata.lock");
  ASSERT_OK(lock);
  auto j = Json(*lock);
  ASSERT_TRUE(j.is_object()) << *lock;
  const std::string pinned =
      j["images"]["docker.io/library/base:1"].begin().value().get<std::string>();
  EXPECT_EQ(j["images"]["docker.io/library/tools:1"].begin().value().get<std::string>(), pinned);
  EXPECT_EQ(run("--locked").exit_code, 0);
  // Move the tag: a different image under base:1.
  fs::path other = owner_ / "other";
  testing::WriteTestFile(other / "Dockerfile", "FROM base:1\nRUN echo moved > /m\n");
  auto moved = RunCommand(std::string(STRATA_BINARY) + " --root " + Q(root_) +
                          " build -q -t base:1 " + Q(other));
  ASSERT_EQ(moved.exit_code, 0) << moved.output;
  r = run("--locked");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("Dockerfile:3"));
  EXPECT_THAT(r.output, HasSubstr("docker.io/library/base:1 (linux/amd64) moved"));
  EXPECT_THAT(r.output, HasSubstr(pinned));
  // --update-lock picks up the move; --locked passes again.
  r = run("--update-lock");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto updated = Json(*ReadFile(ctx / "strata.lock"));
  EXPECT_NE(updated["images"]["docker.io/library/base:1"].begin().value().get<std::string>(),
            pinned);
  EXPECT_EQ(run("--locked").exit_code, 0);
  // Nothing to check against: a clear error.
  ASSERT_OK(RemoveAll(ctx / "strata.lock"));
  r = run("--locked");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("strata.lock not found"));
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

// JSON Schemas (draft-07) of what the specs require: SPDX 2.3 (the
// document fields, package and relationship shapes), in-toto Statement v1,
// SLSA Provenance v1. Checked by ajv (npm ajv-cli, installed by
// tools/setup.sh into /opt/strata-test-tools), not by strata's code.
constexpr char kSpdxSchema[] = R"({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "required": ["spdxVersion", "dataLicense", "SPDXID", "name", "documentNamespace",
               "creationInfo"],
  "properties": {
    "spdxVersion": {"const": "SPDX-2.3"},
    "dataLicense": {"const": "CC0-1.0"},
    "SPDXID": {"const": "SPDXRef-DOCUMENT"},
    "name": {"type": "string", "minLength": 1},
    "documentNamespace": {"type": "string", "format": "uri"},
    "creationInfo": {
      "type": "object", "required": ["created", "creators"],
      "properties": {
        "created": {"type": "string", "format": "date-time"},
        "creators": {"type": "array", "minItems": 1,
                     "items": {"type": "string", "pattern": "^(Tool|Person|Organization): .+"}}
      }
    },
    "packages": {"type": "array", "items": {
      "type": "object", "required": ["SPDXID", "name", "downloadLocation"],
      "properties": {
        "SPDXID": {"type": "string", "pattern": "^SPDXRef-[A-Za-z0-9.-]+$"},
        "name": {"type": "string", "minLength": 1},
        "versionInfo": {"type": "string"},
        "downloadLocation": {"type": "string"},
        "filesAnalyzed": {"type": "boolean"},
        "primaryPackagePurpose": {"enum": ["APPLICATION", "FRAMEWORK", "LIBRARY", "CONTAINER",
          "OPERATING-SYSTEM", "DEVICE", "FIRMWARE", "SOURCE", "ARCHIVE", "FILE", "INSTALL", "OTHER"]},
        "externalRefs": {"type": "array", "items": {
          "type": "object", "required": ["referenceCategory", "referenceType", "referenceLocator"],
          "properties": {
            "referenceCategory": {"enum": ["OTHER", "PERSISTENT-ID", "PERSISTENT_ID", "SECURITY",
                                           "PACKAGE-MANAGER", "PACKAGE_MANAGER"]},
            "referenceType": {"type": "string"},
            "referenceLocator": {"type": "string", "pattern": "^pkg:[a-z]+/"}
          }}}
      }}},
    "relationships": {"type": "array", "items": {
      "type": "object", "required": ["spdxElementId", "relationshipType", "relatedSpdxElement"],
      "properties": {"relationshipType": {"enum": ["DESCRIBES", "CONTAINS", "DEPENDS_ON",
                                                   "DESCRIBED_BY", "CONTAINED_BY", "OTHER"]}}}}
  }
})";

constexpr char kStatementSchema[] = R"({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "required": ["_type", "subject", "predicateType", "predicate"],
  "properties": {
    "_type": {"const": "https://in-toto.io/Statement/v1"},
    "subject": {"type": "array", "minItems": 1, "items": {
      "type": "object", "required": ["digest"],
      "properties": {"name": {"type": "string"},
                     "digest": {"type": "object", "minProperties": 1,
                                "properties": {"sha256": {"type": "string",
                                                          "pattern": "^[a-f0-9]{64}$"}}}}}},
    "predicateType": {"type": "string", "format": "uri"},
    "predicate": {"type": "object"}
  }
})";

constexpr char kSlsaSchema[] = R"({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "required": ["buildDefinition", "runDetails"],
  "properties": {
    "buildDefinition": {
      "type": "object", "required": ["buildType", "externalParameters"],
      "properties": {
        "buildType": {"type": "string", "format": "uri"},
        "externalParameters": {"type": "object"},
        "internalParameters": {"type": "object"},
        "resolvedDependencies": {"type": "array", "items": {
          "type": "object", "anyOf": [{"required": ["uri"]}, {"required": ["digest"]}],
          "properties": {"uri": {"type": "string", "format": "uri"},
                         "digest": {"type": "object"}}}}
      }},
    "runDetails": {
      "type": "object", "required": ["builder"],
      "properties": {
        "builder": {"type": "object", "required": ["id"],
                    "properties": {"id": {"type": "string", "format": "uri"}}},
        "metadata": {"type": "object", "properties": {
          "startedOn": {"type": "string", "format": "date-time"},
          "finishedOn": {"type": "string", "format": "date-time"}}}
      }}
  }
})";

constexpr char kAjv[] = "/opt/strata-test-tools/node_modules/.bin/ajv";

TEST_F(AttestIntegrationTest, StatementsPassAnIndependentSchemaValidator) {
  if (::access(kAjv, X_OK) != 0) {
    GTEST_SKIP() << kAjv << " missing: run tools/setup.sh (installs ajv-cli from npm)";
  }
  Build("--sbom --provenance=mode=max -t val:1", "FROM base:1\nRUN echo v > /v\n");
  auto validate = [&](const std::string& schema, const nlohmann::json& data,
                      const std::string& name) {
    testing::WriteTestFile(owner_ / (name + ".schema.json"), schema);
    testing::WriteTestFile(owner_ / (name + ".json"), data.dump());
    return RunCommand(std::string(kAjv) + " validate --strict=false -c ajv-formats -s " +
                      Q(owner_ / (name + ".schema.json")) + " -d " + Q(owner_ / (name + ".json")));
  };
  for (const std::string type : {"sbom", "provenance"}) {
    auto got = Strata("attest get val:1 --type " + type + " 2>/dev/null");
    ASSERT_EQ(got.exit_code, 0) << got.output;
    auto stmt = Json(got.output);
    ASSERT_TRUE(stmt.is_object());
    auto r = validate(kStatementSchema, stmt, type + "-statement");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    r = validate(type == "sbom" ? kSpdxSchema : kSlsaSchema, stmt["predicate"],
                 type + "-predicate");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    // The validator does fail on a broken document.
    auto broken = stmt["predicate"];
    broken.erase(type == "sbom" ? "spdxVersion" : "runDetails");
    r = validate(type == "sbom" ? kSpdxSchema : kSlsaSchema, broken, type + "-broken");
    EXPECT_NE(r.exit_code, 0) << r.output;
  }
}

}  // namespace
}  // namespace strata
