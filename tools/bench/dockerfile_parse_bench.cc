// Parses a generated 10,000-line Dockerfile: the AST only, and the full plan
// (instructions, ARG/ENV scoping, static expansion, stage graph).
#include <benchmark/benchmark.h>

#include <string>

#include "builder/frontend/dockerfile_parser.h"
#include "builder/frontend/plan.h"

namespace {

// A multi-stage file of realistic instructions, `lines` physical lines long.
std::string MakeDockerfile(int lines) {
  std::string out = "# syntax=docker/dockerfile:1\nARG BASE=debian:bookworm\n";
  int n = 2;
  int stage = 0;
  while (n < lines) {
    out += "FROM ${BASE} AS s" + std::to_string(stage) + "\n";
    out += "ARG VERSION=1.0." + std::to_string(stage) + "\n";
    out += "ENV APP_HOME=/opt/app PATH=/opt/app/bin:$PATH\n";
    out += "WORKDIR ${APP_HOME}/src\n";
    out +=
        "RUN --mount=type=cache,target=/var/cache/apt apt-get update && \\\n"
        "    apt-get install -y --no-install-recommends \\\n"
        "      ca-certificates curl git \\\n"
        "    && rm -rf /var/lib/apt/lists/*\n";
    out += "COPY --chown=app:app --chmod=0755 src/ ${APP_HOME}/src/\n";
    out += "LABEL org.opencontainers.image.version=\"${VERSION}\" stage=\"" +
           std::to_string(stage) + "\"\n";
    out += "RUN <<EOF\nset -e\necho building $VERSION\nmake -j4\nEOF\n";
    out += "EXPOSE 8080/tcp 9090\n";
    out += "CMD [\"/opt/app/bin/server\", \"--port\", \"8080\"]\n";
    if (stage > 0) out += "COPY --from=s" + std::to_string(stage - 1) + " /out /in\n";
    n += stage > 0 ? 19 : 18;
    ++stage;
  }
  return out;
}

void BM_ParseAst10k(benchmark::State& state) {
  const std::string text = MakeDockerfile(10000);
  for (auto _ : state) {
    auto ast = strata::builder::ParseAst(text);
    if (!ast) state.SkipWithError(ast.error().message().c_str());
    benchmark::DoNotOptimize(ast);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(text.size()));
}
BENCHMARK(BM_ParseAst10k)->Unit(benchmark::kMillisecond);

void BM_ParseDockerfilePlan10k(benchmark::State& state) {
  const std::string text = MakeDockerfile(10000);
  strata::builder::ParseOptions opt;
  opt.build_args["VERSION"] = "2.0";
  for (auto _ : state) {
    auto plan = strata::builder::ParseDockerfile(text, opt);
    if (!plan) state.SkipWithError(plan.error().message().c_str());
    benchmark::DoNotOptimize(plan);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(text.size()));
}
BENCHMARK(BM_ParseDockerfilePlan10k)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
