// strata: a daemonless container image builder. This file is the table of
// subcommands; each verb lives in its own cmd_<verb>.cc.
#include <CLI/CLI.hpp>

#include <fmt/format.h>

#include "tools/strata/cli.h"
#include "tools/strata/rootless_entry.h"
#include "tools/strata/verbs.h"

int main(int argc, char** argv) {
  using namespace strata::cli;
  const Verb verbs[] = {
      BuildVerb(),   ImportVerb(), UnpackVerb(), ParseVerb(),   ImagesVerb(),
      InspectVerb(), TagVerb(),    RmiVerb(),    HistoryVerb(), FsckVerb(),
      PruneVerb(),   SaveVerb(),   LoadVerb(),   PullVerb(),    PushVerb(),
      LoginVerb(),   LogoutVerb(), DiffVerb(),   DfVerb(),      BinfmtVerb(),
      AttestVerb(),  ManifestVerb(),
  };

  GlobalOptions global;
  CLI::App app{"strata: a daemonless container image builder", "strata"};
  app.set_version_flag("--version", fmt::format("strata version {}", STRATA_VERSION));
  app.require_subcommand(1);
  app.fallthrough();
  AddGlobalFlags(app, global);

  Action chosen;
  for (const auto& v : verbs) {
    CLI::App* sub = app.add_subcommand(v.name, v.help);
    sub->fallthrough();
    Action action = v.setup(*sub);
    sub->final_callback([&chosen, action] { chosen = action; });
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (app.get_subcommands().empty()) {
      // Name the word the user meant as a verb, if there is one.
      for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--root" || a == "--authfile" || a == "--creds" || a == "--max-layer-size") {
          ++i;
          continue;
        }
        if (a.starts_with("-")) continue;
        fmt::print(stderr, "strata: unknown command \"{}\"\n", a);
        fmt::print(stderr, "Run 'strata --help' for usage.\n");
        return kExitUsage;
      }
    }
    fmt::print(stderr, "strata: {}\n", e.what());
    fmt::print(stderr, "Run 'strata --help' for usage.\n");
    return kExitUsage;
  }
  if (!chosen) return kExitUsage;
  // A non-root build re-executes itself in a user namespace (rootless.h).
  if (auto code = MaybeRunRootless(app.get_subcommands().front()->get_name(), global, argv)) {
    return *code;
  }
  Context ctx{global};
  ReapDeadRuns(ctx);
  // Library code reports errors as values; an exception reaching here is a
  // bug (the standard library or JSON throwing on input we did not foresee).
  // Say so plainly instead of aborting with a core dump.
  try {
    return chosen(ctx);
  } catch (const std::exception& e) {
    fmt::print(stderr, "strata: internal error (please report): {}\n", e.what());
    return kExitFailure;
  }
}
