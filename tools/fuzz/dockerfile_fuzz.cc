// The Dockerfile frontend: ParseAst, then ParseInstruction and
// ExpandInstruction on every node (with a fixed environment), then the whole
// ParseDockerfile (stage graph and plan). Errors are fine; crashes, hangs and
// sanitizer reports are not. Every error names a place ("Dockerfile:N: ").
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tools/fuzz/builder_headers.h"
#include "tools/fuzz/fuzz_check.h"

namespace {
std::optional<std::string> Env(std::string_view name) {
  if (name == "HOME") return "/root";
  if (name == "EMPTY") return "";
  if (name == "PATH") return "/usr/bin:/bin";
  return std::nullopt;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata::builder;
  if (size > 64 * 1024) return 0;  // bigger inputs only slow the search down
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto ast = ParseAst(text);
  if (ast) {
    const char escape = ast->directives.escape;
    const ShellLexer lexer(escape);
    for (const Node& node : ast->nodes) {
      FUZZ_CHECK(node.start_line >= 1 && node.end_line >= node.start_line);
      auto ins = ParseInstruction(node, escape);
      if (!ins) {
        FUZZ_CHECK(ins.error().message().starts_with("Dockerfile:"));
        continue;
      }
      (void)ins->Name();
      (void)InstructionToJson(*ins);
      (void)ExpandInstruction(*ins, lexer, Env);
    }
  }
  ParseOptions options;
  options.build_args = {{"VERSION", "1.0"}};
  auto plan = ParseDockerfile(text, options);
  if (plan) (void)ParseDockerfileToJson(text, options);
  return 0;
}
