// strata binfmt: the QEMU binfmt_misc handlers that RUN steps for foreign
// platforms need (builder/runtime/binfmt.h).
//   strata binfmt                        status: mount, registered handlers
//   strata binfmt --install [ARCH...|all]  register from /usr/lib/binfmt.d
//                                          (Debian qemu-user-static), F flag
//   strata binfmt --uninstall ARCH...|all
// ARCH is a platform (linux/arm64), an architecture (arm64) or qemu's name
// (aarch64). Registering is this explicit command only: a build checks the
// handler and says to run it, as BuildKit says to run tonistiigi/binfmt.
#include <algorithm>

#include <fmt/format.h>

#include "builder/runtime/binfmt.h"
#include "oci/util/file_util.h"
#include "tools/strata/verbs.h"

namespace strata::cli {
namespace {

struct BinfmtFlags {
  bool install = false;
  bool uninstall = false;
  std::vector<std::string> arches;
};

// The qemu arches named on the command line ("all": every rule available,
// or for --uninstall every registered qemu handler).
Result<std::vector<std::string>> NamedArches(const BinfmtFlags& f) {
  std::vector<std::string> out;
  for (const auto& a : f.arches) {
    if (a == "all") {
      if (f.install) {
        for (auto& q : builder::AvailableQemuArches()) out.push_back(q);
      } else {
        for (auto& h : builder::ListQemuHandlers()) out.push_back(h.name.substr(5));
      }
      continue;
    }
    STRATA_ASSIGN_OR_RETURN(auto q, builder::QemuArchOfName(a));
    out.push_back(q);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

int Status() {
  const bool mounted = builder::BinfmtMounted();
  std::string state;
  if (mounted) {
    auto status = ReadFile(std::filesystem::path(builder::kBinfmtMiscDir) / "status");
    state =
        status && status->starts_with("disabled") ? ", disabled (echo 1 > status)" : ", enabled";
  }
  fmt::print("binfmt_misc: {} at {}{}\n", mounted ? "mounted" : "not mounted",
             builder::kBinfmtMiscDir, state);
  auto handlers = builder::ListQemuHandlers();
  if (handlers.empty()) {
    fmt::print("no qemu handlers registered\n");
  } else {
    fmt::print("{:<20} {:<14} {:<9} {:<6} {}\n", "HANDLER", "PLATFORM", "STATUS", "FLAGS",
               "INTERPRETER");
    for (const auto& h : handlers) {
      auto p = builder::PlatformOfQemuArch(std::string_view(h.name).substr(5));
      fmt::print("{:<20} {:<14} {:<9} {:<6} {}\n", h.name, p ? p->ToString() : "-",
                 h.enabled ? "enabled" : "disabled", h.flags, h.interpreter);
    }
  }
  auto avail = builder::AvailableQemuArches();
  if (avail.empty()) {
    fmt::print("no rules in {} (install Debian's qemu-user-static)\n", builder::kBinfmtConfDir);
  } else {
    fmt::print("installable (strata binfmt --install ARCH|all): {}\n", fmt::join(avail, " "));
  }
  return kExitOk;
}

int Run(const BinfmtFlags& f) {
  if (f.install && f.uninstall) {
    Fail(
        Error(ErrorCode::kInvalidArgument, "binfmt: --install and --uninstall exclude each other"));
    return kExitUsage;
  }
  if (!f.install && !f.uninstall) {
    if (!f.arches.empty()) {
      Fail(Error(ErrorCode::kInvalidArgument,
                 fmt::format("binfmt: {} given without --install or --uninstall", f.arches[0])));
      return kExitUsage;
    }
    return Status();
  }
  if (f.uninstall && f.arches.empty()) {
    Fail(Error(ErrorCode::kInvalidArgument, "binfmt --uninstall: name the architectures (or all)"));
    return kExitUsage;
  }
  BinfmtFlags g = f;
  if (g.install && g.arches.empty()) g.arches = {"all"};
  auto arches = NamedArches(g);
  if (!arches) {
    Fail(arches.error());
    return kExitUsage;
  }
  // The host's own architecture needs no handler (and qemu-user-static
  // ships none for it): skipped, said so.
  auto host = builder::QemuArch(oci::Platform::Host());
  for (const auto& a : *arches) {
    if (host && a == *host) {
      fmt::print("{}: the host's architecture, no emulation needed\n", a);
      continue;
    }
    if (g.install) {
      auto r = builder::InstallBinfmtHandler(a);
      if (!r) return Fail(r.error());
      fmt::print("qemu-{}: {}\n", a, *r ? "installed" : "already installed");
    } else {
      auto r = builder::UninstallBinfmtHandler(a);
      if (!r) return Fail(r.error().Wrap(fmt::format("binfmt --uninstall {}", a)));
      fmt::print("qemu-{}: {}\n", a, *r ? "uninstalled" : "not installed");
    }
  }
  return kExitOk;
}

}  // namespace

Verb BinfmtVerb() {
  return {"binfmt",
          "Show, install or remove the QEMU binfmt_misc handlers RUN needs for foreign platforms",
          [](CLI::App& app) -> Action {
            auto f = std::make_shared<BinfmtFlags>();
            app.add_flag("--install", f->install,
                         "Register qemu handlers (F flag) from /usr/lib/binfmt.d (Debian "
                         "qemu-user-static); needs root");
            app.add_flag("--uninstall", f->uninstall, "Remove qemu handlers; needs root");
            app.add_option("ARCH", f->arches,
                           "linux/arm64, arm64 or aarch64, ... or all (default for --install)");
            return [f](Context&) { return Run(*f); };
          }};
}

}  // namespace strata::cli
