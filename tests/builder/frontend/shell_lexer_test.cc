#include "builder/frontend/shell_lexer.h"

#include <fstream>
#include <map>

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

// The environment every table case is expanded in.
EnvGetter TableEnv() {
  static const std::map<std::string, std::string, std::less<>> kEnv = {
      {"PWD", "/home"},
      {"SHELL", "bash"},
      {"KOREAN", "한국어"},
      {"NULL", ""},
      {"WORD", "hello world"},
      {"FILE", "archive.tar.gz"},
      {"PATH_", "/usr/local/bin:/usr/bin"},
      {"A", "a"},
      {"AB", "ab"},
      {"SPACES", "  two   spaces "},
      {"DOLLAR", "$x"}};
  return [](std::string_view name) -> std::optional<std::string> {
    auto it = kEnv.find(name);
    if (it == kEnv.end()) return std::nullopt;
    return it->second;
  };
}

struct Case {
  int line;
  std::string input;
  std::string expected;
};

// Lines "input ==> expected"; '#' comments; "ERROR" expects a failure; a
// trailing "<sp>" marker stands for significant trailing spaces.
std::vector<Case> ReadTable(const std::string& name) {
  std::vector<Case> cases;
  std::ifstream in(testing::TestData("shell_lexer/" + name));
  EXPECT_TRUE(in.good()) << name;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    size_t sep = line.find(" ==> ");
    EXPECT_NE(sep, std::string::npos) << name << ":" << n;
    if (sep == std::string::npos) continue;
    std::string expected = line.substr(sep + 5);
    if (expected.ends_with("<sp>")) expected = expected.substr(0, expected.size() - 4);
    cases.push_back({n, line.substr(0, sep), expected});
  }
  EXPECT_GT(cases.size(), 10u);
  return cases;
}

TEST(ShellLexerTest, ProcessWordTable) {
  ShellLexer lexer('\\');
  for (const Case& c : ReadTable("process_word.txt")) {
    auto r = lexer.ProcessWord(c.input, TableEnv());
    if (c.expected == "ERROR") {
      EXPECT_FALSE(r.has_value()) << "line " << c.line << ": " << c.input << " gave " << *r;
    } else {
      ASSERT_TRUE(r.has_value()) << "line " << c.line << ": " << r.error().message();
      EXPECT_EQ(*r, c.expected) << "line " << c.line << ": " << c.input;
    }
  }
}

TEST(ShellLexerTest, ProcessWordsTable) {
  ShellLexer lexer('\\');
  for (const Case& c : ReadTable("process_words.txt")) {
    auto r = lexer.ProcessWords(c.input, TableEnv());
    ASSERT_TRUE(r.has_value()) << "line " << c.line << ": " << r.error().message();
    std::string joined;
    for (const std::string& w : *r) joined += (joined.empty() ? "" : "|") + w;
    EXPECT_EQ(joined, c.expected) << "line " << c.line << ": " << c.input;
  }
}

TEST(ShellLexerTest, BacktickEscape) {
  ShellLexer lexer('`');
  ASSERT_OK_AND_ASSIGN(std::string w, lexer.ProcessWord("C:\\path`$A", TableEnv()));
  EXPECT_EQ(w, "C:\\path$A");
}

TEST(ShellLexerTest, SkipUnsetEnvKeepsUnknownVariables) {
  LexOptions o;
  o.skip_unset_env = true;
  ShellLexer lexer(o);
  ASSERT_OK_AND_ASSIGN(std::string w,
                       lexer.ProcessWord("/go/bin:$PATH:${GOPATH:-/go}:$A", TableEnv()));
  EXPECT_EQ(w, "/go/bin:$PATH:${GOPATH:-/go}:a");
}

TEST(ShellLexerTest, ReportsMatchedAndUnmatchedNames) {
  ShellLexer lexer;
  ASSERT_OK_AND_ASSIGN(Expansion e, lexer.Process("$A ${MISSING} ${AB:-x}", TableEnv()));
  EXPECT_EQ(e.matched, (std::set<std::string>{"A", "AB"}));
  EXPECT_EQ(e.unmatched, (std::set<std::string>{"MISSING"}));
}

TEST(ShellLexerTest, ErrorMessagesNameTheWord) {
  ShellLexer lexer;
  auto r = lexer.ProcessWord("${UNSET:?must be set}", TableEnv());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message(), "failed to process \"${UNSET:?must be set}\": UNSET: must be set");
  auto m = lexer.ProcessWord("${A", TableEnv());
  ASSERT_FALSE(m.has_value());
  EXPECT_THAT(m.error().message(), ::testing::HasSubstr("missing '}'"));
}

TEST(ShellLexerTest, SkipProcessQuotesKeepsQuotes) {
  LexOptions o;
  o.skip_process_quotes = true;
  ShellLexer lexer(o);
  ASSERT_OK_AND_ASSIGN(std::string w, lexer.ProcessWord("echo \"$A\" '$AB'", TableEnv()));
  EXPECT_EQ(w, "echo \"a\" 'ab'");
}

}  // namespace
}  // namespace strata::builder
