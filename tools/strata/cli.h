// Shared plumbing of the strata CLI: global options, the subcommand table
// entry type, and the helpers every verb uses to open the store and report
// errors. Only the CLI prints; library code returns errors as values.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "oci/store.h"
#include "oci/util/error.h"

namespace strata::cli {

// Accepted before or after the verb.
struct GlobalOptions {
  std::string root;        // --root, else $STRATA_ROOT, else the default
  bool tls_verify = true;  // --tls-verify=false
  std::string authfile;    // --authfile
  std::string creds;       // --creds user:pass (never printed)
  bool quiet = false;      // -q
  bool verbose = false;    // -v
  // --max-layer-size SIZE ("64G", "512MiB"): the largest uncompressed layer
  // applied to disk; else $STRATA_MAX_LAYER_SIZE, else 64 GiB.
  std::string max_layer_size;
};

// Exit codes of the CLI contract.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// The state a verb's action runs with.
struct Context {
  GlobalOptions& global;
  Result<std::unique_ptr<oci::Store>> OpenStore() const;
  std::filesystem::path Root() const;
  // The uncompressed layer size limit from --max-layer-size, else
  // $STRATA_MAX_LAYER_SIZE, else oci::kDefaultMaxLayerBytes. InvalidArgument
  // naming the flag or variable when the value does not parse.
  Result<uint64_t> MaxLayerBytes() const;
};

// A verb registers its subcommand (flags and help) on `app` and returns the
// action to run once the command line is parsed.
using Action = std::function<int(Context&)>;
using Setup = std::function<Action(CLI::App& app)>;

struct Verb {
  const char* name;
  const char* help;
  Setup setup;
};

// Prints "strata: <message>" on stderr and returns kExitFailure (or
// kExitUsage for InvalidArgument errors when `usage` is set).
int Fail(const Error& e);

// Adds the global flags to a (sub)command so they work after the verb too.
void AddGlobalFlags(CLI::App& app, GlobalOptions& g);

// Reaps what crashed strata processes left in the store at ctx.Root()
// (builder/run_reaper.h): dead containers, bundles, work dirs, mounts.
// A failure is a warning on stderr: it must not stop the command.
void ReapDeadRuns(const Context& ctx);

// Human-readable byte count ("12.3MB"), as docker prints sizes.
std::string HumanSize(int64_t bytes);
// "3 minutes ago" from an RFC 3339 timestamp ("" if unparseable).
std::string HumanAge(const std::string& rfc3339);

}  // namespace strata::cli
