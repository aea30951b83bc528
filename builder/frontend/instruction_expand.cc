// Expansion of an instruction's words with the stage's ENV and ARGs.
#include "builder/frontend/instructions.h"
#include "builder/frontend/instructions_internal.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <map>
#include <set>
#include <span>
#include <utility>

namespace strata::builder {

using namespace internal;  // NOLINT(google-build-using-namespace)

namespace {

// ---- expansion ------------------------------------------------------------

struct Expander {
  const ShellLexer& lexer;
  const EnvGetter& env;
  std::set<std::string>* unresolved;
  Status Word(std::string& w) const {
    STRATA_ASSIGN_OR_RETURN(Expansion e, lexer.Process(w, env));
    if (unresolved) unresolved->insert(e.unmatched.begin(), e.unmatched.end());
    w = std::move(e.word);
    return OkStatus();
  }
  Status Words(std::vector<std::string>& ws) const {
    for (std::string& w : ws) STRATA_RETURN_IF_ERROR(Word(w));
    return OkStatus();
  }
};

Status ExpandCommand(Command& cmd, const Expander& x, const ShellLexer& lexer) {
  return std::visit(
      [&](auto& c) -> Status {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, FromCommand>) {
          STRATA_RETURN_IF_ERROR(x.Word(c.image));
          STRATA_RETURN_IF_ERROR(x.Word(c.platform));
        } else if constexpr (std::is_same_v<T, RunCommand>) {
          c.mounts.clear();
          for (std::string& m : c.mount_flags) {
            STRATA_RETURN_IF_ERROR(x.Word(m));
            STRATA_ASSIGN_OR_RETURN(MountSpec spec, ParseMount(m));
            c.mounts.push_back(std::move(spec));
          }
        } else if constexpr (std::is_same_v<T, LabelCommand> || std::is_same_v<T, EnvCommand>) {
          auto& kvs = [&]() -> std::vector<KeyValue>& {
            if constexpr (std::is_same_v<T, LabelCommand>) {
              return c.labels;
            } else {
              return c.env;
            }
          }();
          for (KeyValue& kv : kvs) {
            STRATA_RETURN_IF_ERROR(x.Word(kv.key));
            STRATA_RETURN_IF_ERROR(x.Word(kv.value));
          }
        } else if constexpr (std::is_same_v<T, ArgCommand>) {
          for (ArgDecl& a : c.args) {
            STRATA_RETURN_IF_ERROR(x.Word(a.key));
            if (a.value) STRATA_RETURN_IF_ERROR(x.Word(*a.value));
          }
        } else if constexpr (std::is_same_v<T, ExposeCommand>) {
          std::vector<std::string> out;
          for (const std::string& p : c.ports) {
            STRATA_ASSIGN_OR_RETURN(Expansion e, x.lexer.Process(p, x.env));
            if (x.unresolved) x.unresolved->insert(e.unmatched.begin(), e.unmatched.end());
            out.insert(out.end(), e.words.begin(), e.words.end());
          }
          c.ports = std::move(out);
          // Every port must be valid after expansion (a bad one fails the
          // instruction; it is never dropped along with the good ones).
          STRATA_RETURN_IF_ERROR(NormalizeExposedPorts(c.ports));
        } else if constexpr (std::is_same_v<T, CopyCommand>) {
          STRATA_RETURN_IF_ERROR(x.Words(c.sources));
          STRATA_RETURN_IF_ERROR(x.Word(c.dest));
          STRATA_RETURN_IF_ERROR(x.Word(c.from));
          STRATA_RETURN_IF_ERROR(x.Word(c.chown));
          STRATA_RETURN_IF_ERROR(x.Word(c.chmod));
          STRATA_RETURN_IF_ERROR(x.Words(c.excludes));
          LexOptions body = lexer.options();
          body.skip_process_quotes = true;
          body.raw_escapes = true;
          ShellLexer body_lexer(body);
          for (Heredoc& h : c.source_contents) {
            if (!h.expand) continue;
            STRATA_ASSIGN_OR_RETURN(Expansion e, body_lexer.Process(h.content, x.env));
            if (x.unresolved) x.unresolved->insert(e.unmatched.begin(), e.unmatched.end());
            h.content = std::move(e.word);
          }
        } else if constexpr (std::is_same_v<T, WorkdirCommand>) {
          STRATA_RETURN_IF_ERROR(x.Word(c.path));
        } else if constexpr (std::is_same_v<T, UserCommand>) {
          STRATA_RETURN_IF_ERROR(x.Word(c.user));
        } else if constexpr (std::is_same_v<T, StopSignalCommand>) {
          STRATA_RETURN_IF_ERROR(x.Word(c.signal));
          STRATA_RETURN_IF_ERROR(ValidateStopSignal(c.signal));
        } else if constexpr (std::is_same_v<T, VolumeCommand>) {
          STRATA_RETURN_IF_ERROR(x.Words(c.volumes));
          for (const std::string& v : c.volumes) {
            if (Trim(v).empty()) {
              return MakeError(ErrorCode::kInvalidArgument,
                               "VOLUME specified can not be an empty string");
            }
          }
        }
        // RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK/MAINTAINER/ONBUILD: not expanded.
        return OkStatus();
      },
      cmd);
}

// Go's time.Duration.String() for whole milliseconds and up ("1m30s", "500ms").

}  // namespace

Result<Instruction> ExpandInstruction(const Instruction& raw, const ShellLexer& lexer,
                                      const EnvGetter& env, std::string_view file_name,
                                      std::set<std::string>* unresolved) {
  Instruction out = raw;
  Expander x{lexer, env, unresolved};
  Status s = ExpandCommand(out.command, x, lexer);
  if (!s) {
    return MakeError(s.error().code(), "{}: {}", Where(file_name, raw.start_line),
                     s.error().message());
  }
  return out;
}

}  // namespace strata::builder
