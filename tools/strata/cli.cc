#include "tools/strata/cli.h"

#include <cstdlib>
#include <ctime>

#include <fmt/format.h>

#include "builder/runtime/oci_runtime_runner.h"
#include "builder/runtime/run_reaper.h"
#include "oci/layer_reader.h"

namespace strata::cli {

std::filesystem::path Context::Root() const {
  return global.root.empty() ? oci::Store::DefaultRoot() : std::filesystem::path(global.root);
}

Result<std::unique_ptr<oci::Store>> Context::OpenStore() const {
  auto root = Root();
  auto s = oci::Store::Open(root);
  if (!s) return Unexpected(s.error().Wrap(fmt::format("open store {}", root.string())));
  return s;
}

Result<uint64_t> Context::MaxLayerBytes() const {
  std::string_view from = "--max-layer-size";
  std::string_view text = global.max_layer_size;
  if (text.empty()) {
    const char* env = std::getenv("STRATA_MAX_LAYER_SIZE");
    if (env == nullptr || *env == '\0') return oci::kDefaultMaxLayerBytes;
    from = "STRATA_MAX_LAYER_SIZE";
    text = env;
  }
  auto v = oci::ParseByteSize(text);
  if (!v) return Unexpected(v.error().Wrap(from));
  return v;
}

int Fail(const Error& e) {
  fmt::print(stderr, "strata: {}\n", e.message());
  return kExitFailure;
}

void AddGlobalFlags(CLI::App& app, GlobalOptions& g) {
  app.add_option("--root", g.root, "Store root (default $STRATA_ROOT or /var/lib/strata)")
      ->group("Global");
  app.add_flag("--tls-verify{true},!--no-tls-verify", g.tls_verify,
               "Verify registry TLS certificates (--tls-verify=false to disable)")
      ->group("Global");
  app.add_option("--authfile", g.authfile, "Registry credentials file")->group("Global");
  app.add_option("--creds", g.creds, "Registry credentials USER:PASSWORD")->group("Global");
  app.add_flag("-q,--quiet", g.quiet, "Print only essential output")->group("Global");
  app.add_flag("-v,--verbose", g.verbose, "Print more detail")->group("Global");
  app.add_option("--max-layer-size", g.max_layer_size,
                 "Largest uncompressed layer to apply, e.g. 64G, 512M (default "
                 "$STRATA_MAX_LAYER_SIZE or 64G)")
      ->check(CLI::Validator(
          [](std::string& s) {
            auto v = oci::ParseByteSize(s);
            return v ? std::string() : v.error().message();
          },
          "SIZE"))
      ->group("Global");
}

void ReapDeadRuns(const Context& ctx) {
  builder::ReapOptions o;
  o.store_root = ctx.Root();
  const char* path = std::getenv("PATH");
  for (std::string_view name : builder::kDefaultRuntimes) {
    if (auto p = builder::FindExecutable(name, path != nullptr ? path : ""); p) {
      o.runtime = *p;
      break;
    }
  }
  auto r = builder::ReapDeadRuns(o);
  if (!r) fmt::print(stderr, "strata: warning: {}\n", r.error().message());
}

std::string HumanSize(int64_t bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  if (u == 0) return fmt::format("{}B", bytes);
  return fmt::format("{:.3g}{}", v, units[u]);
}

std::string HumanAge(const std::string& rfc3339) {
  std::tm tm{};
  if (rfc3339.size() < 19 || ::strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) {
    return "";
  }
  int64_t then = ::timegm(&tm);
  int64_t now = std::time(nullptr);
  int64_t d = now - then;
  if (d < 0) return "in the future";
  auto unit = [](int64_t n, const char* what) {
    return fmt::format("{} {}{} ago", n, what, n == 1 ? "" : "s");
  };
  if (d < 60) return unit(d, "second");
  if (d < 3600) return unit(d / 60, "minute");
  if (d < 86400) return unit(d / 3600, "hour");
  if (d < 86400 * 30) return unit(d / 86400, "day");
  if (d < 86400 * 365) return unit(d / (86400 * 30), "month");
  return unit(d / (86400 * 365), "year");
}

}  // namespace strata::cli
