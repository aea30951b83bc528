// strata parse FILE: the Dockerfile's plan as JSON (for debugging).
#include <fmt/format.h>

#include "builder/frontend/plan.h"
#include "oci/json_util.h"
#include "oci/util/file_util.h"
#include "tools/strata/verbs.h"

namespace strata::cli {

Verb ParseVerb() {
  return {"parse", "Print a Dockerfile's parsed plan as JSON", [](CLI::App& app) -> Action {
            auto file = std::make_shared<std::string>();
            auto target = std::make_shared<std::string>();
            auto args = std::make_shared<std::vector<std::string>>();
            app.add_option("FILE", *file, "Dockerfile")->required();
            app.add_option("--target", *target, "Target stage");
            app.add_option("--build-arg", *args, "KEY=VALUE");
            return [file, target, args](Context&) -> int {
              auto text = ReadFile(*file);
              if (!text) return Fail(text.error());
              builder::ParseOptions po;
              po.file_name = std::filesystem::path(*file).filename().string();
              po.target = *target;
              for (const auto& kv : *args) {
                auto eq = kv.find('=');
                if (eq == std::string::npos) continue;
                po.build_args[kv.substr(0, eq)] = kv.substr(eq + 1);
              }
              auto j = builder::ParseDockerfileToJson(*text, po);
              if (!j) return Fail(j.error());
              fmt::print("{}\n", oci::DumpJson(*j, 2));
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
