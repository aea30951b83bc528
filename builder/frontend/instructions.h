// Typed Dockerfile instructions.
//
// ParseInstruction turns one AST node (dockerfile_parser.h) into a typed
// command with its per-instruction flags validated. Words are kept *raw*
// (quotes and $VARs as written); ExpandInstruction produces the expanded form
// with an EnvGetter, following the Dockerfile reference on which instructions
// expand: ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR ARG
// ONBUILD-less, plus RUN --mount values and COPY --from/--chown/--chmod.
// RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK command lines are never expanded: the
// shell does it. The build engine calls ExpandInstruction at dispatch time,
// when the base image's ENV is known (as BuildKit does). Value types only.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "builder/frontend/dockerfile_parser.h"
#include "builder/frontend/shell_lexer.h"
#include "oci/util/error.h"

namespace strata::builder {

struct KeyValue {
  std::string key;
  std::string value;
  bool operator==(const KeyValue&) const = default;
};

// Shell form keeps the string as written; exec form is a JSON string array.
struct CommandLine {
  bool exec_form = false;
  std::string shell;              // shell form: the command text
  std::vector<std::string> exec;  // exec form: argv
  bool operator==(const CommandLine&) const = default;
};

// One `RUN --mount=...` (BuildKit's mount options).
struct MountSpec {
  std::string type = "bind";  // bind | cache | tmpfs | secret | ssh
  std::string target;
  std::string source;
  std::string from;
  std::string id;
  std::string sharing;  // cache: shared | private | locked
  std::string mode;     // octal, as written
  std::string env;      // secret: expose as this env var
  std::optional<int64_t> uid, gid, size;
  bool readonly = false;
  bool required = false;
  bool operator==(const MountSpec&) const = default;
};

// A size with go-units RAMInBytes syntax ("64m", "1g", "512k", "64MiB",
// plain bytes); binary multiples. InvalidArgument otherwise.
Result<int64_t> ParseRamBytes(std::string_view v);

// Parses one --mount value ("type=cache,target=/root/.cache").
// kInvalidArgument on an unknown type, key or bad value.
Result<MountSpec> ParseMount(std::string_view value);

struct FromCommand {
  std::string image;       // "golang:1.22", "scratch", or a stage name
  std::string stage_name;  // lowercased `AS name`, empty if none
  std::string platform;    // --platform value
};

struct RunCommand {
  CommandLine cmd;
  std::vector<Heredoc> heredocs;
  std::vector<std::string> mount_flags;  // --mount values as written
  std::vector<MountSpec> mounts;         // parsed from mount_flags
  std::string network;                   // "", default, none, host
  std::string security;                  // "", sandbox, insecure
};

struct CmdCommand {
  CommandLine cmd;
};
struct EntrypointCommand {
  CommandLine cmd;
};
struct ShellCommand {
  std::vector<std::string> shell;
};
struct LabelCommand {
  std::vector<KeyValue> labels;
};
struct MaintainerCommand {
  std::string maintainer;
};
struct ExposeCommand {
  std::vector<std::string> ports;  // "80", "80/udp", "8000-8010/tcp"
};
struct EnvCommand {
  std::vector<KeyValue> env;
};
struct ArgDecl {
  std::string key;
  std::optional<std::string> value;  // the default, if any
  bool operator==(const ArgDecl&) const = default;
};
struct ArgCommand {
  std::vector<ArgDecl> args;
};

// COPY and ADD share one shape; `add` tells them apart.
struct CopyCommand {
  bool add = false;
  std::vector<std::string> sources;      // paths / URLs (ADD), not heredocs
  std::vector<Heredoc> source_contents;  // `COPY <<EOF /dst` inline files
  std::string dest;
  bool json_form = false;
  std::string from;                   // --from: stage name, index or image ref
  std::string chown;                  // --chown
  std::string chmod;                  // --chmod
  bool link = false;                  // --link
  bool parents = false;               // --parents
  std::vector<std::string> excludes;  // --exclude (repeatable)
  std::string checksum;               // ADD --checksum
  bool keep_git_dir = false;          // ADD --keep-git-dir
  // ADD --unpack=true|false (Dockerfile 1.17): unset = unpack local archives,
  // keep remote files as they are.
  std::optional<bool> unpack;
};

struct WorkdirCommand {
  std::string path;
};
struct UserCommand {
  std::string user;
};
struct VolumeCommand {
  std::vector<std::string> volumes;
};
struct StopSignalCommand {
  std::string signal;
};

struct HealthcheckCommand {
  bool none = false;              // HEALTHCHECK NONE
  std::vector<std::string> test;  // ["CMD", argv...] or ["CMD-SHELL", command]
  std::string interval, timeout, start_period, start_interval;  // as written
  int64_t interval_ns = 0, timeout_ns = 0, start_period_ns = 0, start_interval_ns = 0;
  int retries = 0;  // 0 = default
};

struct OnbuildCommand {
  std::string expression;  // the trigger instruction as written ("RUN make")
};

using Command = std::variant<FromCommand, RunCommand, CmdCommand, EntrypointCommand, ShellCommand,
                             LabelCommand, MaintainerCommand, ExposeCommand, EnvCommand, ArgCommand,
                             CopyCommand, WorkdirCommand, UserCommand, VolumeCommand,
                             StopSignalCommand, HealthcheckCommand, OnbuildCommand>;

struct Instruction {
  Command command;
  std::string original;  // the logical line as written
  int start_line = 0;
  int end_line = 0;

  // "RUN", "COPY", "ADD", ... (upper case).
  std::string_view Name() const;
};

// All instruction names, upper case.
const std::vector<std::string_view>& InstructionNames();

// Parses one node. Errors: "<file>:<line>: unknown instruction: COPPY (did you
// mean COPY?)", "unknown flag: --foo", argument count errors, bad JSON for
// SHELL, bad --mount/--network/--security/HEALTHCHECK options.
Result<Instruction> ParseInstruction(const Node& node, char escape,
                                     std::string_view file_name = "Dockerfile");

// Returns `raw` with every expandable word expanded through `lexer` and `env`
// (see the file comment for which words). Errors carry "<file>:<line>: ".
// If `unresolved` is given, it receives the names referenced but not set.
Result<Instruction> ExpandInstruction(const Instruction& raw, const ShellLexer& lexer,
                                      const EnvGetter& env,
                                      std::string_view file_name = "Dockerfile",
                                      std::set<std::string>* unresolved = nullptr);

// Normalizes EXPOSE specs: "80" -> "80/tcp", "53/UDP" -> "53/udp", ranges
// expanded ("8000-8001" -> "8000/tcp", "8001/tcp"). kInvalidArgument if a spec
// is not a port, a range or has an unknown protocol.
Result<std::vector<std::string>> NormalizeExposedPorts(const std::vector<std::string>& ports);

// STOPSIGNAL's value as moby's signal.ParseSignal accepts it: a positive
// number or a signal name ("SIGTERM", "term", "RTMIN+3"). InvalidArgument
// "invalid signal: X" otherwise.
Status ValidateStopSignal(std::string_view signal);

// Parses a Go duration ("30s", "1m30s", "250ms") into nanoseconds.
Result<int64_t> ParseGoDuration(std::string_view s);

// The image history `created_by` BuildKit records for an (expanded)
// instruction. `shell` is the SHELL in effect; `run_args` are the build args
// in effect for RUN (proxy args already removed), printed as `|N k=v ...`.
std::string CreatedBy(const Instruction& expanded, const std::vector<std::string>& shell,
                      const std::vector<KeyValue>& run_args);

// JSON of one instruction (deterministic key order).
nlohmann::json InstructionToJson(const Instruction& ins);

// Tries the exec (JSON array of strings) form; nullopt means shell form.
std::optional<std::vector<std::string>> ParseJsonStringArray(std::string_view text);

}  // namespace strata::builder
