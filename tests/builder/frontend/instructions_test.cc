#include "builder/frontend/instructions.h"

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

Result<Instruction> ParseOne(std::string_view line, char escape = '\\') {
  std::string text = "FROM x\n" + std::string(line) + "\n";
  auto ast = ParseAst(text);
  if (!ast) return std::unexpected(ast.error());
  return ParseInstruction(ast->nodes.back(), escape);
}

template <typename T>
T Get(std::string_view line) {
  auto r = ParseOne(line);
  EXPECT_TRUE(r.has_value()) << line << ": " << (r ? "" : r.error().message());
  if (!r) return T{};
  const T* c = std::get_if<T>(&r->command);
  EXPECT_NE(c, nullptr) << line;
  return c ? *c : T{};
}

std::string ErrorOf(std::string_view line) {
  auto r = ParseOne(line);
  EXPECT_FALSE(r.has_value()) << line;
  return r ? "" : r.error().message();
}

EnvGetter MapEnv(std::map<std::string, std::string> m) {
  return [m = std::move(m)](std::string_view k) -> std::optional<std::string> {
    auto it = m.find(std::string(k));
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
}

TEST(InstructionsTest, UnknownInstructionSuggests) {
  EXPECT_EQ(ErrorOf("COPPY a b"), "Dockerfile:2: unknown instruction: COPPY (did you mean COPY?)");
  EXPECT_EQ(ErrorOf("rnu ls"), "Dockerfile:2: unknown instruction: rnu (did you mean RUN?)");
  EXPECT_EQ(ErrorOf("FOOBARBAZ x"), "Dockerfile:2: unknown instruction: FOOBARBAZ");
}

TEST(InstructionsTest, InstructionNamesAreCaseInsensitive) {
  auto r = ParseOne("wOrKdIr /app");
  ASSERT_OK(r);
  EXPECT_EQ(r->Name(), "WORKDIR");
}

TEST(InstructionsTest, FromForms) {
  FromCommand f = Get<FromCommand>("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build-Env");
  EXPECT_EQ(f.image, "golang:1.22");
  EXPECT_EQ(f.stage_name, "build-env");
  EXPECT_EQ(f.platform, "$BUILDPLATFORM");
  EXPECT_EQ(ErrorOf("FROM a b"), "Dockerfile:2: FROM requires either one or three arguments");
  EXPECT_THAT(ErrorOf("FROM a AS 1abc"), ::testing::HasSubstr("invalid name for build stage"));
  EXPECT_EQ(ErrorOf("FROM --plaform=x a"), "Dockerfile:2: unknown flag: --plaform");
}

TEST(InstructionsTest, RunShellExecAndJsonFallback) {
  RunCommand shell = Get<RunCommand>("RUN echo \"$HOME\" && ls");
  EXPECT_FALSE(shell.cmd.exec_form);
  EXPECT_EQ(shell.cmd.shell, "echo \"$HOME\" && ls");
  RunCommand exec = Get<RunCommand>("RUN [\"/bin/echo\", \"a b\"]");
  EXPECT_TRUE(exec.cmd.exec_form);
  EXPECT_EQ(exec.cmd.exec, (std::vector<std::string>{"/bin/echo", "a b"}));
  // A JSON array with a non-string element is an error, as in BuildKit.
  EXPECT_EQ(ErrorOf("RUN [\"a\", 1]"),
            "Dockerfile:2: RUN arrays must be comprised of strings only");
  EXPECT_EQ(ErrorOf("CMD [\"echo\", 1]"),
            "Dockerfile:2: CMD arrays must be comprised of strings only");
  // Not JSON at all: shell form, exactly as written.
  RunCommand bad = Get<RunCommand>("RUN [ \"broken");
  EXPECT_FALSE(bad.cmd.exec_form);
  RunCommand single = Get<RunCommand>("RUN ['single', 'quotes']");
  EXPECT_FALSE(single.cmd.exec_form);
  EXPECT_EQ(ErrorOf("RUN"), "Dockerfile:2: RUN requires at least one argument");
}

TEST(InstructionsTest, RunMountsNetworkSecurity) {
  RunCommand r = Get<RunCommand>(
      "RUN --mount=type=cache,target=/root/.cache/go-build,sharing=locked "
      "--mount=type=secret,id=npmrc,target=/root/.npmrc,required "
      "--mount=type=bind,from=build,source=/out,target=/in,rw "
      "--mount=type=tmpfs,target=/tmp,size=1048576 --mount=type=ssh "
      "--network=none --security=insecure make");
  ASSERT_EQ(r.mounts.size(), 5u);
  EXPECT_EQ(r.mounts[0].type, "cache");
  EXPECT_EQ(r.mounts[0].id, "/root/.cache/go-build");
  EXPECT_EQ(r.mounts[0].sharing, "locked");
  EXPECT_FALSE(r.mounts[0].readonly);
  EXPECT_EQ(r.mounts[1].type, "secret");
  EXPECT_EQ(r.mounts[1].id, "npmrc");
  EXPECT_TRUE(r.mounts[1].required);
  EXPECT_EQ(r.mounts[2].from, "build");
  EXPECT_FALSE(r.mounts[2].readonly);
  EXPECT_EQ(r.mounts[3].size, 1048576);
  EXPECT_EQ(r.mounts[4].target, "/run/buildkit/ssh_agent.0");
  EXPECT_EQ(r.mounts[4].id, "default");
  EXPECT_EQ(r.network, "none");
  EXPECT_EQ(r.security, "insecure");
  EXPECT_EQ(ErrorOf("RUN --network=bridge x"), "Dockerfile:2: unsupported network mode \"bridge\"");
  EXPECT_EQ(ErrorOf("RUN --mount=type=nfs,target=/x x"),
            "Dockerfile:2: unsupported mount type \"nfs\"");
  // No target: the WORKDIR (resolved by the executor); "/" never.
  EXPECT_EQ(Get<RunCommand>("RUN --mount=type=cache x").mounts[0].target, "");
  EXPECT_EQ(Get<RunCommand>("RUN --mount=from=b x").mounts[0].type, "bind");
  EXPECT_EQ(ErrorOf("RUN --mount=type=bind,target=/ x"),
            "Dockerfile:2: invalid mount target \"/\"");
  EXPECT_EQ(Get<RunCommand>("RUN --mount=type=tmpfs,target=/t,size=64m x").mounts[0].size,
            64 << 20);
  EXPECT_EQ(Get<RunCommand>("RUN --mount=type=tmpfs,target=/t,size=1g x").mounts[0].size,
            int64_t{1} << 30);
  EXPECT_EQ(Get<RunCommand>("RUN --mount=type=tmpfs,target=/t,size=512k x").mounts[0].size,
            512 << 10);
  EXPECT_EQ(Get<RunCommand>("RUN --mount=type=tmpfs,target=/t,size=64MiB x").mounts[0].size,
            64 << 20);
  // Options that a type does not take are refused, never dropped.
  EXPECT_EQ(ErrorOf("RUN --mount=type=bind,target=/x,mode=0755 x"),
            "Dockerfile:2: unexpected key 'mode' for mount type 'bind'");
  EXPECT_EQ(ErrorOf("RUN --mount=type=cache,target=/x,size=1m x"),
            "Dockerfile:2: unexpected key 'size' for mount type 'cache'");
  EXPECT_EQ(ErrorOf("RUN --mount=type=tmpfs,target=/x,sharing=locked x"),
            "Dockerfile:2: unexpected key 'sharing' for mount type 'tmpfs'");
  EXPECT_EQ(ErrorOf("RUN --mount=type=cache,target=/x,env=A x"),
            "Dockerfile:2: unexpected key 'env' for mount type 'cache'");
  EXPECT_EQ(ErrorOf("RUN --mount=type=tmpfs,target=/t,size=64q x"),
            "Dockerfile:2: invalid size \"64q\" in mount");
  EXPECT_EQ(ErrorOf("RUN --mount=type=bind,target=/x,foo=bar x"),
            "Dockerfile:2: unexpected key 'foo' in 'foo=bar'");
  EXPECT_EQ(ErrorOf("RUN --mount x"), "Dockerfile:2: missing a value on flag: --mount");
}

TEST(InstructionsTest, SecretMountDefaultsTarget) {
  ASSERT_OK_AND_ASSIGN(MountSpec m, ParseMount("type=secret,id=aws"));
  EXPECT_EQ(m.target, "/run/secrets/aws");
  ASSERT_OK_AND_ASSIGN(MountSpec e, ParseMount("type=secret,id=tok,env=TOKEN"));
  EXPECT_EQ(e.env, "TOKEN");
  ASSERT_OK_AND_ASSIGN(MountSpec b, ParseMount("target=/src"));
  EXPECT_EQ(b.type, "bind");
  EXPECT_TRUE(b.readonly);
}

TEST(InstructionsTest, EnvAndLabelForms) {
  EnvCommand legacy = Get<EnvCommand>("ENV MY_VAR  my value  with spaces");
  ASSERT_EQ(legacy.env.size(), 1u);
  EXPECT_EQ(legacy.env[0], (KeyValue{"MY_VAR", "my value  with spaces"}));
  EnvCommand pairs = Get<EnvCommand>("ENV A=1 B=\"two words\" C=three\\ words D=");
  ASSERT_EQ(pairs.env.size(), 4u);
  EXPECT_EQ(pairs.env[1], (KeyValue{"B", "\"two words\""}));  // raw until expanded
  EXPECT_EQ(pairs.env[3], (KeyValue{"D", ""}));
  EXPECT_EQ(ErrorOf("ENV A=1 B"),
            "Dockerfile:2: Syntax error - can't find = in \"B\". Must be of the form: name=value");
  EXPECT_EQ(ErrorOf("ENV ONLYKEY"), "Dockerfile:2: ENV must have two arguments");
  EXPECT_EQ(ErrorOf("LABEL"), "Dockerfile:2: LABEL requires at least one argument");
  LabelCommand l = Get<LabelCommand>("LABEL \"com.example.vendor\"=\"ACME Inc\" version=1.0");
  ASSERT_EQ(l.labels.size(), 2u);
}

TEST(InstructionsTest, ExpandEnvRemovesQuotesAndSubstitutes) {
  auto raw = ParseOne("ENV A=\"x $B\" C='$B' D=${B:-none}");
  ASSERT_OK(raw);
  ASSERT_OK_AND_ASSIGN(Instruction e,
                       ExpandInstruction(*raw, ShellLexer(), MapEnv({{"B", "bee"}})));
  const auto& env = std::get<EnvCommand>(e.command).env;
  EXPECT_EQ(env[0].value, "x bee");
  EXPECT_EQ(env[1].value, "$B");
  EXPECT_EQ(env[2].value, "bee");
}

TEST(InstructionsTest, RunAndCmdAreNotExpandedButMountsAre) {
  auto run = ParseOne("RUN --mount=type=cache,target=$CACHE echo $HOME");
  ASSERT_OK(run);
  ASSERT_OK_AND_ASSIGN(Instruction e, ExpandInstruction(*run, ShellLexer(),
                                                        MapEnv({{"CACHE", "/c"}, {"HOME", "/h"}})));
  const auto& r = std::get<RunCommand>(e.command);
  EXPECT_EQ(r.cmd.shell, "echo $HOME");
  EXPECT_EQ(r.mounts[0].target, "/c");
  auto cmd = ParseOne("CMD echo $HOME");
  ASSERT_OK_AND_ASSIGN(Instruction c,
                       ExpandInstruction(*cmd, ShellLexer(), MapEnv({{"HOME", "/h"}})));
  EXPECT_EQ(std::get<CmdCommand>(c.command).cmd.shell, "echo $HOME");
}

TEST(InstructionsTest, ArgForms) {
  ArgCommand a = Get<ArgCommand>("ARG A B=2 C=\"x y\"");
  ASSERT_EQ(a.args.size(), 3u);
  EXPECT_FALSE(a.args[0].value.has_value());
  EXPECT_EQ(a.args[1].value, "2");
  EXPECT_EQ(ErrorOf("ARG"), "Dockerfile:2: ARG requires at least one argument");
}

TEST(InstructionsTest, CopyAndAddFlags) {
  CopyCommand c = Get<CopyCommand>(
      "COPY --from=build --chown=app:app --chmod=0755 --link --parents --exclude=*.md "
      "--exclude=tmp a b /dst/");
  EXPECT_EQ(c.sources, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c.dest, "/dst/");
  EXPECT_EQ(c.from, "build");
  EXPECT_EQ(c.chown, "app:app");
  EXPECT_EQ(c.chmod, "0755");
  EXPECT_TRUE(c.link);
  EXPECT_TRUE(c.parents);
  EXPECT_EQ(c.excludes, (std::vector<std::string>{"*.md", "tmp"}));
  CopyCommand j = Get<CopyCommand>("COPY [\"my file.txt\", \"/dst dir/\"]");
  EXPECT_TRUE(j.json_form);
  EXPECT_EQ(j.sources, (std::vector<std::string>{"my file.txt"}));
  EXPECT_EQ(j.dest, "/dst dir/");
  CopyCommand add = Get<CopyCommand>(
      "ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d "
      "--link=false https://example.com/a.tar.gz /a.tar.gz");
  EXPECT_TRUE(add.add);
  EXPECT_FALSE(add.link);
  EXPECT_EQ(ErrorOf("ADD --checksum=sha256:abc local.txt /x"),
            "Dockerfile:2: checksum can't be specified for non-HTTP(S) or non-Git sources");
  EXPECT_EQ(ErrorOf("COPY --checksum=sha256:abc a /x"), "Dockerfile:2: unknown flag: --checksum");
  EXPECT_EQ(ErrorOf("COPY onlyone"),
            "Dockerfile:2: COPY requires at least two arguments, but only one was provided. "
            "Destination could not be determined");
  EXPECT_EQ(ErrorOf("COPY --link=maybe a b"),
            "Dockerfile:2: expecting boolean value for flag link, not: maybe");
  EXPECT_EQ(ErrorOf("COPY --from=a --from=b a b"),
            "Dockerfile:2: duplicate flag specified: --from");
}

TEST(InstructionsTest, CopyHeredocSourcesExpandUnlessQuoted) {
  auto ast = ParseAst("FROM x\nCOPY <<A <<'B' /dst/\nv=$V \"q\"\nA\nv=$V\nB\n");
  ASSERT_OK(ast);
  ASSERT_OK_AND_ASSIGN(Instruction raw, ParseInstruction(ast->nodes[1], '\\'));
  ASSERT_OK_AND_ASSIGN(Instruction e, ExpandInstruction(raw, ShellLexer(), MapEnv({{"V", "1"}})));
  const auto& c = std::get<CopyCommand>(e.command);
  EXPECT_TRUE(c.sources.empty());
  ASSERT_EQ(c.source_contents.size(), 2u);
  EXPECT_EQ(c.source_contents[0].content, "v=1 \"q\"\n");
  EXPECT_EQ(c.source_contents[1].content, "v=$V\n");
}

// BuildKit expands an unquoted COPY heredoc with its lexer's RawQuotes and
// RawEscapes: an escape is kept with the character after it, so `\$V` stays
// `\$V` (not expanded) and `\\` stays `\\`; quotes are kept as written.
TEST(InstructionsTest, CopyHeredocKeepsEscapesRawAsBuildKit) {
  auto ast = ParseAst("FROM x\nCOPY <<A /dst\na \\$V b $V c \\\\ d 'q'\nA\n");
  ASSERT_OK(ast);
  ASSERT_OK_AND_ASSIGN(Instruction raw, ParseInstruction(ast->nodes[1], '\\'));
  ASSERT_OK_AND_ASSIGN(Instruction e, ExpandInstruction(raw, ShellLexer(), MapEnv({{"V", "1"}})));
  const auto& c = std::get<CopyCommand>(e.command);
  ASSERT_EQ(c.source_contents.size(), 1u);
  EXPECT_EQ(c.source_contents[0].content, "a \\$V b 1 c \\\\ d 'q'\n");
}

TEST(InstructionsTest, Healthcheck) {
  HealthcheckCommand h = Get<HealthcheckCommand>(
      "HEALTHCHECK --interval=30s --timeout=3s --start-period=1m --start-interval=500ms "
      "--retries=3 CMD curl -f http://localhost/ || exit 1");
  EXPECT_EQ(h.test, (std::vector<std::string>{"CMD-SHELL", "curl -f http://localhost/ || exit 1"}));
  EXPECT_EQ(h.interval_ns, 30'000'000'000);
  EXPECT_EQ(h.start_period_ns, 60'000'000'000);
  EXPECT_EQ(h.start_interval_ns, 500'000'000);
  EXPECT_EQ(h.retries, 3);
  HealthcheckCommand e = Get<HealthcheckCommand>("HEALTHCHECK cmd [\"/bin/check\", \"-q\"]");
  EXPECT_EQ(e.test, (std::vector<std::string>{"CMD", "/bin/check", "-q"}));
  EXPECT_TRUE(Get<HealthcheckCommand>("HEALTHCHECK NONE").none);
  EXPECT_EQ(ErrorOf("HEALTHCHECK NONE x"), "Dockerfile:2: HEALTHCHECK NONE takes no arguments");
  EXPECT_EQ(ErrorOf("HEALTHCHECK RUN x"),
            "Dockerfile:2: Unknown type \"RUN\" in HEALTHCHECK (try CMD)");
  EXPECT_EQ(ErrorOf("HEALTHCHECK --interval=10us CMD x"),
            "Dockerfile:2: Interval \"10us\" cannot be less than 1ms");
  EXPECT_EQ(ErrorOf("HEALTHCHECK --retries=-1 CMD x"),
            "Dockerfile:2: --retries cannot be negative (-1)");
}

TEST(InstructionsTest, OnbuildRules) {
  OnbuildCommand o = Get<OnbuildCommand>("ONBUILD RUN make install");
  EXPECT_EQ(o.expression, "RUN make install");
  EXPECT_EQ(ErrorOf("ONBUILD ONBUILD RUN x"),
            "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  EXPECT_EQ(ErrorOf("ONBUILD FROM x"), "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger");
  EXPECT_EQ(ErrorOf("ONBUILD maintainer x"),
            "Dockerfile:2: MAINTAINER isn't allowed as an ONBUILD trigger");
  EXPECT_EQ(ErrorOf("ONBUILD COPPY a b"),
            "Dockerfile:2: ONBUILD unknown instruction: COPPY (did you mean COPY?)");
}

TEST(InstructionsTest, ShellVolumeExposeAndSingleArgInstructions) {
  EXPECT_EQ(Get<ShellCommand>("SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]").shell.size(),
            4u);
  EXPECT_EQ(ErrorOf("SHELL /bin/bash -c"),
            "Dockerfile:2: SHELL requires the arguments to be in JSON form");
  EXPECT_EQ(Get<VolumeCommand>("VOLUME /data /logs").volumes.size(), 2u);
  EXPECT_EQ(Get<VolumeCommand>("VOLUME [\"/my data\"]").volumes[0], "/my data");
  EXPECT_EQ(Get<ExposeCommand>("EXPOSE 80 443/tcp 53/udp 8000-8002").ports.size(), 4u);
  EXPECT_EQ(Get<WorkdirCommand>("WORKDIR /my dir").path, "/my dir");
  EXPECT_EQ(Get<StopSignalCommand>("STOPSIGNAL SIGQUIT").signal, "SIGQUIT");
  EXPECT_EQ(Get<UserCommand>("USER 1000:1000").user, "1000:1000");
  EXPECT_EQ(Get<MaintainerCommand>("MAINTAINER Jane <jane@example.com>").maintainer,
            "Jane <jane@example.com>");
  EXPECT_EQ(ErrorOf("WORKDIR"), "Dockerfile:2: WORKDIR requires exactly one argument");
  EXPECT_EQ(ErrorOf("WORKDIR --foo /x"), "Dockerfile:2: unknown flag: --foo");
}

TEST(InstructionsTest, NormalizeExposedPorts) {
  ASSERT_OK_AND_ASSIGN(auto p, NormalizeExposedPorts({"80", "53/UDP", "8000-8002/tcp"}));
  EXPECT_EQ(p, (std::vector<std::string>{"80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp"}));
  EXPECT_FALSE(NormalizeExposedPorts({"http"}).has_value());
  EXPECT_FALSE(NormalizeExposedPorts({"80/xyz"}).has_value());
  EXPECT_FALSE(NormalizeExposedPorts({"90-80"}).has_value());
}

TEST(InstructionsTest, GoDurations) {
  EXPECT_EQ(*ParseGoDuration("1m30s"), 90'000'000'000);
  EXPECT_EQ(*ParseGoDuration("1.5h"), 5'400'000'000'000);
  EXPECT_EQ(*ParseGoDuration("0"), 0);
  EXPECT_FALSE(ParseGoDuration("10").has_value());
  EXPECT_FALSE(ParseGoDuration("5 s").has_value());
  // Regression: std::stod threw on these instead of returning an error.
  EXPECT_FALSE(ParseGoDuration(".s").has_value());
  EXPECT_FALSE(ParseGoDuration("1.2.3s").has_value());
  EXPECT_FALSE(ParseGoDuration("..").has_value());
}

TEST(InstructionsTest, CreatedByMatchesBuildKitHistory) {
  auto text = [](std::string_view line, std::vector<KeyValue> args = {}) {
    auto r = ParseOne(line);
    EXPECT_TRUE(r.has_value());
    return CreatedBy(*r, {"/bin/sh", "-c"}, args);
  };
  EXPECT_EQ(text("RUN apt-get update"), "RUN /bin/sh -c apt-get update # buildkit");
  EXPECT_EQ(text("RUN make", {{"V", "1"}, {"W", "x"}}),
            "RUN |2 V=1 W=x /bin/sh -c make # buildkit");
  EXPECT_EQ(text("RUN [\"a\", \"b\"]"), "RUN a b # buildkit");
  EXPECT_EQ(text("COPY a b /dst/"), "COPY a b /dst/ # buildkit");
  EXPECT_EQ(text("ADD x.tar /"), "ADD x.tar / # buildkit");
  EXPECT_EQ(text("ENV A=b C=d"), "ENV A=b C=d");
  EXPECT_EQ(text("CMD [\"nginx\", \"-g\", \"daemon off;\"]"),
            "CMD [\"nginx\" \"-g\" \"daemon off;\"]");
  EXPECT_EQ(text("CMD echo \"hi\""), "CMD [\"/bin/sh\" \"-c\" \"echo \\\"hi\\\"\"]");
  EXPECT_EQ(text("EXPOSE 80 53/udp"), "EXPOSE map[53/udp:{} 80/tcp:{}]");
  EXPECT_EQ(text("WORKDIR /app"), "WORKDIR /app");
  EXPECT_EQ(text("VOLUME /a /b"), "VOLUME [/a /b]");
}

}  // namespace
}  // namespace strata::builder
