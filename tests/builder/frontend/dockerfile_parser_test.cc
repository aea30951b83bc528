#include "builder/frontend/dockerfile_parser.h"

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

AstFile MustParse(std::string_view text) {
  auto r = ParseAst(text);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
  return r ? *r : AstFile{};
}

TEST(DockerfileParserTest, SplitsKeywordFlagsAndArgs) {
  AstFile f = MustParse("from --platform=linux/arm64 alpine AS Build\nRun echo hi\n");
  ASSERT_EQ(f.nodes.size(), 2u);
  EXPECT_EQ(f.nodes[0].keyword, "from");
  EXPECT_EQ(f.nodes[0].flags, (std::vector<std::string>{"--platform=linux/arm64"}));
  EXPECT_EQ(f.nodes[0].args, "alpine AS Build");
  EXPECT_EQ(f.nodes[1].keyword_original, "Run");
  EXPECT_EQ(f.nodes[1].start_line, 2);
}

TEST(DockerfileParserTest, DirectivesOnlyAtTheTop) {
  AstFile f = MustParse(
      "# syntax=docker/dockerfile:1.7\n#ESCAPE = `\n# check=skip=all\n"
      "FROM x\n# escape=\\\n");
  EXPECT_EQ(f.directives.syntax, "docker/dockerfile:1.7");
  EXPECT_EQ(f.directives.escape, '`');
  EXPECT_EQ(f.directives.check, "skip=all");

  AstFile late = MustParse("# a comment\n# escape=`\nFROM x\n");
  EXPECT_EQ(late.directives.escape, '\\');
  AstFile after_blank = MustParse("\n# escape=`\nFROM x\n");
  EXPECT_EQ(after_blank.directives.escape, '\\');
  AstFile unknown_first = MustParse("# foo=bar\n# escape=`\nFROM x\n");
  EXPECT_EQ(unknown_first.directives.escape, '\\');
}

TEST(DockerfileParserTest, DirectiveErrors) {
  auto dup = ParseAst("# escape=`\n# escape=`\nFROM x\n");
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().message(), "Dockerfile:2: only one escape parser directive can be used");
  auto bad = ParseAst("# escape=x\nFROM x\n", "my.Dockerfile");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message(),
            "my.Dockerfile:1: invalid escape token 'x' does not match ` or \\");
}

TEST(DockerfileParserTest, ContinuationsJoinWithoutSeparator) {
  AstFile f = MustParse(
      "FROM x\nRUN apt-get update && \\\n    apt-get install -y \\\n"
      "# a comment inside\n\n      curl\nRUN b\n");
  ASSERT_EQ(f.nodes.size(), 3u);
  EXPECT_EQ(f.nodes[1].args, "apt-get update &&     apt-get install -y       curl");
  EXPECT_EQ(f.nodes[1].start_line, 2);
  EXPECT_EQ(f.nodes[1].end_line, 6);
  EXPECT_EQ(f.nodes[2].start_line, 7);
  ASSERT_EQ(f.warnings.size(), 1u);
  EXPECT_EQ(f.warnings[0].line, 2);
}

TEST(DockerfileParserTest, BacktickEscapeContinues) {
  AstFile f = MustParse("# escape=`\nFROM x\nRUN dir c:\\ `\n  /s\n");
  ASSERT_EQ(f.nodes.size(), 2u);
  EXPECT_EQ(f.nodes[1].args, "dir c:\\   /s");
}

TEST(DockerfileParserTest, CrlfBomAndTrailingContinuation) {
  AstFile f = MustParse("\xEF\xBB\xBF# escape=\\\r\nFROM x\r\nRUN a \\\r\n  b\r\nRUN c \\");
  ASSERT_EQ(f.nodes.size(), 3u);
  EXPECT_EQ(f.nodes[0].original, "FROM x");
  EXPECT_EQ(f.nodes[1].args, "a   b");
  EXPECT_EQ(f.nodes[2].args, "c");
  EXPECT_EQ(f.nodes[2].end_line, 5);
}

TEST(DockerfileParserTest, HeredocsWithChompAndQuotes) {
  AstFile f = MustParse(
      "FROM x\nRUN <<EOF\necho $HOME\nEOF\nRUN <<-'END' cat\n\tline1\n\t\tline2\n\tEND\n"
      "COPY <<A <<\"B\" /dst/\na-body\nA\nb-body\nB\nRUN 3<<X cat <&3\nx\nX\n");
  ASSERT_EQ(f.nodes.size(), 5u);
  ASSERT_EQ(f.nodes[1].heredocs.size(), 1u);
  EXPECT_EQ(f.nodes[1].heredocs[0], (Heredoc{"EOF", "echo $HOME\n", true, false, -1}));
  EXPECT_EQ(f.nodes[1].end_line, 4);
  EXPECT_EQ(f.nodes[2].heredocs[0], (Heredoc{"END", "line1\nline2\n", false, true, -1}));
  ASSERT_EQ(f.nodes[3].heredocs.size(), 2u);
  EXPECT_EQ(f.nodes[3].heredocs[0], (Heredoc{"A", "a-body\n", true, false, -1}));
  EXPECT_EQ(f.nodes[3].heredocs[1], (Heredoc{"B", "b-body\n", false, false, -1}));
  EXPECT_EQ(f.nodes[3].start_line, 9);
  EXPECT_EQ(f.nodes[3].end_line, 13);
  EXPECT_EQ(f.nodes[4].heredocs[0].fd, 3);
}

TEST(DockerfileParserTest, HeredocOnlyForRunCopyAdd) {
  AstFile f = MustParse("FROM x\nENV A=<<EOF\nRUN echo '<<notheredoc'\n");
  ASSERT_EQ(f.nodes.size(), 3u);
  EXPECT_TRUE(f.nodes[1].heredocs.empty());
  EXPECT_TRUE(f.nodes[2].heredocs.empty());
}

TEST(DockerfileParserTest, UnterminatedHeredocNamesLine) {
  auto r = ParseAst("FROM x\n\nRUN <<EOF\necho\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "Dockerfile:3: unterminated heredoc EOF");
}

TEST(DockerfileParserTest, EmptyFileIsAnError) {
  // BuildKit's words for a file with no bytes at all.
  auto empty = ParseAst("");
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().message(), "Dockerfile:1: the Dockerfile cannot be empty");
  for (std::string_view text : {"\n\n", "# only a comment\n", "   \\\n"}) {
    auto r = ParseAst(text);
    ASSERT_FALSE(r.has_value()) << text;
    EXPECT_THAT(r.error().message(),
                ::testing::MatchesRegex("Dockerfile:[0-9]+: file with no instructions"));
  }
}

TEST(DockerfileParserTest, FlagsStopAtFirstNonFlagWord) {
  AstFile f = MustParse("FROM x\nCOPY --from=a --chown=\"1:1\" src --notaflag dst\n");
  EXPECT_EQ(f.nodes[1].flags, (std::vector<std::string>{"--from=a", "--chown=1:1"}));
  EXPECT_EQ(f.nodes[1].args, "src --notaflag dst");
}

TEST(DockerfileParserTest, SplitWordsRawKeepsQuotes) {
  EXPECT_EQ(SplitWordsRaw("a=\"x y\" b='c d'  e\\ f", '\\'),
            (std::vector<std::string>{"a=\"x y\"", "b='c d'", "e\\ f"}));
}

}  // namespace
}  // namespace strata::builder

namespace strata::builder {
namespace {

// Regression: a numeric prefix too large for an int made std::stoi throw.
TEST(DockerfileParserTest, HugeHeredocFdIsAnErrorNotACrash) {
  auto r = ParseAst("FROM busybox\nRUN 99999999999999999999<<EOF\nx\nEOF\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("Dockerfile:2:"));
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("heredoc file descriptor"));
}

}  // namespace
}  // namespace strata::builder

namespace strata::builder {
namespace {

// BuildKit continues a line only on an escape that is not itself escaped.
TEST(DockerfileParserTest, EscapedEscapeAtLineEndDoesNotContinue) {
  auto r = ParseAst("FROM a\nENV A=x\\\\\nRUN echo\n");
  ASSERT_OK(r);
  ASSERT_EQ(r->nodes.size(), 3u);
  EXPECT_EQ(r->nodes[1].args, "A=x\\\\");
  auto c = ParseAst("FROM a\nRUN a \\\n  b\n");
  ASSERT_OK(c);
  ASSERT_EQ(c->nodes.size(), 2u);
  auto bt = ParseAst("# escape=`\nFROM a\nENV A=x``\nRUN echo\n");
  ASSERT_OK(bt);
  EXPECT_EQ(bt->nodes.size(), 3u);
}

TEST(DockerfileParserTest, HeredocWithBlankAfterOperator) {
  auto r = ParseAst("FROM a\nRUN << EOF\necho hi\nEOF\nCOPY <<- END /x\n\tbody\nEND\n");
  ASSERT_OK(r);
  ASSERT_EQ(r->nodes.size(), 3u);
  ASSERT_EQ(r->nodes[1].heredocs.size(), 1u);
  EXPECT_EQ(r->nodes[1].heredocs[0].name, "EOF");
  EXPECT_EQ(r->nodes[1].heredocs[0].content, "echo hi\n");
  EXPECT_EQ(r->nodes[1].args, "<<EOF");
  ASSERT_EQ(r->nodes[2].heredocs.size(), 1u);
  EXPECT_TRUE(r->nodes[2].heredocs[0].chomp);
  EXPECT_EQ(r->nodes[2].heredocs[0].content, "body\n");
  EXPECT_EQ(r->nodes[2].args, "<<-END /x");
}

// BuildKit keeps CRLF line endings inside heredoc bodies (the terminator
// line still matches without its \r).
TEST(DockerfileParserTest, HeredocBodyKeepsCrlf) {
  auto r = ParseAst("FROM a\r\nCOPY <<EOF /x\r\nline1\r\nline2\r\nEOF\r\n");
  ASSERT_OK(r);
  ASSERT_EQ(r->nodes.size(), 2u);
  ASSERT_EQ(r->nodes[1].heredocs.size(), 1u);
  EXPECT_EQ(r->nodes[1].heredocs[0].content, "line1\r\nline2\r\n");
}

TEST(DockerfileParserTest, HeredocDelimiterWithEscapedQuote) {
  auto r = ParseAst("FROM a\nRUN <<eo\\'f\n$X\neo'f\n");
  ASSERT_OK(r);
  ASSERT_EQ(r->nodes[1].heredocs.size(), 1u);
  EXPECT_EQ(r->nodes[1].heredocs[0].name, "eo'f");
  EXPECT_FALSE(r->nodes[1].heredocs[0].expand);
}

}  // namespace
}  // namespace strata::builder
