#include "tools/strata/format.h"

#include "tests/testing/test_util.h"

namespace strata::cli {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

json Data() {
  return json::parse(R"({
    "ID": "e12769978fb1", "Repository": "app", "Tag": "1.0", "Size": 1234,
    "Config": {"Env": ["A=1", "B=2"], "Labels": {"k": "v"}, "Cmd": null, "Tty": false},
    "RepoTags": ["app:1.0", "app:latest"]
  })");
}

std::string Render(std::string_view tmpl, const json& data = Data()) {
  auto t = Template::Parse(tmpl);
  if (!t) return "PARSE ERROR: " + t.error().message();
  auto out = t->Render(data);
  if (!out) return "RENDER ERROR: " + out.error().message();
  return *out;
}

TEST(TemplateTest, RendersFieldsAndLiteralText) {
  EXPECT_EQ(Render("{{.Repository}}:{{.Tag}} ({{.ID}})"), "app:1.0 (e12769978fb1)");
  EXPECT_EQ(Render("no actions"), "no actions");
  EXPECT_EQ(Render(""), "");
}

TEST(TemplateTest, RendersNestedFields) {
  EXPECT_EQ(Render("{{.Config.Env}}"), "[A=1 B=2]");
  EXPECT_EQ(Render("{{.Config.Labels}}"), "map[k:v]");
  EXPECT_EQ(Render("{{.Config.Labels.k}}"), "v");
}

TEST(TemplateTest, PrintsValuesAsGoDoes) {
  EXPECT_EQ(Render("{{.Size}}"), "1234");
  EXPECT_EQ(Render("{{.Config.Tty}}"), "false");
  EXPECT_EQ(Render("{{.Config.Cmd}}"), "<nil>");
}

TEST(TemplateTest, JsonFunction) {
  EXPECT_EQ(Render("{{json .Config.Env}}"), R"(["A=1","B=2"])");
  EXPECT_EQ(Render("{{json .Config}}"),
            R"({"Cmd":null,"Env":["A=1","B=2"],"Labels":{"k":"v"},"Tty":false})");
  EXPECT_EQ(Render("{{json .}}", json{{"a", 1}}), R"({"a":1})");
  EXPECT_EQ(Render("{{json .Tag}}"), R"("1.0")");
}

TEST(TemplateTest, IndexJoinUpperLowerLen) {
  EXPECT_EQ(Render("{{index .RepoTags 0}}"), "app:1.0");
  EXPECT_EQ(Render("{{index .RepoTags 1}}"), "app:latest");
  EXPECT_EQ(Render(R"({{index .Config.Labels "k"}})"), "v");
  EXPECT_EQ(Render(R"({{index .Config.Labels "absent"}})"), "");
  EXPECT_EQ(Render(R"({{join .Config.Env ","}})"), "A=1,B=2");
  EXPECT_EQ(Render("{{upper .Repository}} {{lower \"ABC\"}} {{len .RepoTags}}"), "APP abc 2");
  EXPECT_THAT(Render("{{index .RepoTags 5}}"), HasSubstr("index out of range: 5"));
}

TEST(TemplateTest, RangeOverListsAndMaps) {
  EXPECT_EQ(Render("{{range .Config.Env}}{{println .}}{{end}}"), "A=1\nB=2\n");
  EXPECT_EQ(Render("{{range .RepoTags}}[{{.}}]{{end}}"), "[app:1.0][app:latest]");
  EXPECT_EQ(Render("{{range .Config.Labels}}{{.}}{{end}}"), "v");
  EXPECT_EQ(Render("{{range .Config.Cmd}}x{{else}}none{{end}}"), "none");
  EXPECT_EQ(Render("{{range .L}}{{.N}},{{end}}", json::parse(R"({"L":[{"N":1},{"N":2}]})")),
            "1,2,");
  EXPECT_THAT(Render("{{range .L}}{{.Nope}}{{end}}", json::parse(R"({"L":[{"N":1}]})")),
              HasSubstr("unknown field \".Nope\""));
  EXPECT_THAT(Render("{{range .Tag}}{{end}}"), HasSubstr("range can't iterate over .Tag"));
}

TEST(TemplateTest, IfElse) {
  EXPECT_EQ(Render("{{if .Config.Cmd}}cmd{{else}}no cmd{{end}}"), "no cmd");
  EXPECT_EQ(Render("{{if .RepoTags}}tagged{{end}}"), "tagged");
  EXPECT_EQ(Render("{{if .Config.Tty}}tty{{end}}"), "");
  EXPECT_EQ(Render("{{if .Size}}{{range .RepoTags}}{{.}} {{end}}{{end}}"), "app:1.0 app:latest ");
}

TEST(TemplateTest, PrintAndPrintln) {
  EXPECT_EQ(Render("{{print .Repository .Tag}}"), "app1.0");
  EXPECT_EQ(Render("{{print .Size .Size}}"), "1234 1234");
  EXPECT_EQ(Render("{{println .Repository .Tag}}"), "app 1.0\n");
}

TEST(TemplateTest, UnbalancedBlocksAreErrors) {
  EXPECT_THAT(Render("{{range .RepoTags}}x"), HasSubstr("{{range}} without {{end}}"));
  EXPECT_THAT(Render("x{{end}}"), HasSubstr("unexpected {{end}}"));
  EXPECT_THAT(Render("{{else}}"), HasSubstr("unexpected {{else}}"));
  EXPECT_THAT(Render("{{if}}x{{end}}"), HasSubstr("if takes one field"));
  EXPECT_THAT(Render("{{range $i, $e := .RepoTags}}{{end}}"), HasSubstr("variables"));
}

TEST(TemplateTest, DotIsTheWholeValue) { EXPECT_EQ(Render("{{.}}", json("x")), "x"); }

TEST(TemplateTest, BackslashEscapesInLiteralText) {
  EXPECT_EQ(Render(R"({{.ID}}\t{{.Tag}}\n)"), "e12769978fb1\t1.0\n");
  EXPECT_EQ(Render(R"(a\\b)"), R"(a\b)");
  EXPECT_EQ(Render(R"(\x)"), R"(\x)");
}

TEST(TemplateTest, TrimMarkers) {
  EXPECT_EQ(Render("a   {{- .Tag -}}   b"), "a1.0b");
  EXPECT_EQ(Render("{{/* a comment */}}x"), "x");
}

TEST(TemplateTest, UnknownFieldIsAnErrorNamingIt) {
  auto t = Template::Parse("{{.Repo}}");
  ASSERT_OK(t);
  auto out = t->Render(Data());
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(out.error().message(), HasSubstr("unknown field \".Repo\""));
  EXPECT_THAT(out.error().message(), HasSubstr("Repository"));
  EXPECT_THAT(Render("{{.Config.Nope}}"), HasSubstr("unknown field \".Config.Nope\""));
  EXPECT_THAT(Render("{{json .Nope}}"), HasSubstr("unknown field \".Nope\""));
  EXPECT_THAT(Render("{{.Tag.Inner}}"), HasSubstr("can't evaluate field \".Tag.Inner\""));
}

TEST(TemplateTest, UnknownFunctionIsAnErrorNamingIt) {
  EXPECT_THAT(Render("{{frobnicate .ID}}"), HasSubstr("unknown function \"frobnicate\""));
  EXPECT_THAT(Render("{{with .RepoTags}}x{{end}}"), HasSubstr("\"with\" is not supported"));
  EXPECT_THAT(Render("{{.ID | json}}"), HasSubstr("pipelines are not supported"));
  EXPECT_THAT(Render("{{json}}"), HasSubstr("json needs an argument"));
  EXPECT_THAT(Render("{{json .ID .Tag}}"), HasSubstr("json takes 1 argument, got 2"));
}

TEST(TemplateTest, MalformedTemplatesAreErrors) {
  EXPECT_THAT(Render("{{.ID"), HasSubstr("unclosed action"));
  EXPECT_THAT(Render("{{}}"), HasSubstr("empty action"));
  EXPECT_THAT(Render("{{.ID .Tag}}"), HasSubstr("unexpected words"));
  EXPECT_THAT(Render("{{..}}"), HasSubstr("bad field name"));
  EXPECT_THAT(Render(R"({{join .RepoTags "x}})"), HasSubstr("unterminated string"));
  EXPECT_THAT(Render("{{$x}}"), HasSubstr("variables are not supported"));
}

TEST(TemplateTest, TableModeHeaderUsesNamesAndOverrides) {
  auto t = Template::Parse("table {{.ID}}\\t{{.Repository}}\\t{{json .Config}}");
  ASSERT_OK(t);
  EXPECT_TRUE(t->table());
  EXPECT_EQ(t->Header({{"ID", "IMAGE ID"}}), "IMAGE ID\tREPOSITORY\tCONFIG");
  EXPECT_EQ(*t->Render(Data()), "e12769978fb1\tapp\t" + Data()["Config"].dump());
  auto plain = Template::Parse("tablet {{.ID}}");
  ASSERT_OK(plain);
  EXPECT_FALSE(plain->table());
}

TEST(FormatRowsTest, JsonPrintsOneObjectPerLine) {
  std::vector<json> rows = {{{"ID", "a"}}, {{"ID", "b"}}};
  auto out = FormatRows("json", rows, json{{"ID", ""}});
  ASSERT_OK(out);
  EXPECT_EQ(*out, "{\"ID\":\"a\"}\n{\"ID\":\"b\"}\n");
}

TEST(FormatRowsTest, TemplateRowsEndWithNewline) {
  std::vector<json> rows = {{{"ID", "a"}}, {{"ID", "b"}}};
  auto out = FormatRows("{{.ID}}", rows, json{{"ID", ""}});
  ASSERT_OK(out);
  EXPECT_EQ(*out, "a\nb\n");
}

TEST(FormatRowsTest, TableIsAlignedWithHeader) {
  std::vector<json> rows = {{{"ID", "abc"}, {"Tag", "latest"}},
                            {{"ID", "abcdefghijklm"}, {"Tag", "1"}}};
  auto out = FormatRows("table {{.ID}}\\t{{.Tag}}", rows, rows[0], {{"ID", "IMAGE ID"}});
  ASSERT_OK(out);
  EXPECT_EQ(*out,
            "IMAGE ID        TAG\n"
            "abc             latest\n"
            "abcdefghijklm   1\n");
}

TEST(FormatRowsTest, UnknownFieldFailsEvenWithoutRows) {
  auto out = FormatRows("{{.Nope}}", {}, json{{"ID", ""}});
  ASSERT_FALSE(out.has_value());
  EXPECT_THAT(out.error().message(), HasSubstr("unknown field \".Nope\""));
}

TEST(DockerTimeTest, FormatsAsDockerPrintsCreatedAt) {
  EXPECT_EQ(DockerTime("2026-12-01T15:59:06Z"), "2026-12-01 15:59:06 +0000 UTC");
  EXPECT_EQ(DockerTime("2026-12-01T15:59:06.123456789Z"), "2026-12-01 15:59:06 +0000 UTC");
  EXPECT_EQ(DockerTime("2026-12-01T17:59:06+02:00"), "2026-12-01 15:59:06 +0000 UTC");
  EXPECT_EQ(DockerTime("garbage"), "");
}

TEST(GoStringTest, NestedValues) {
  EXPECT_EQ(GoString(json::parse(R"({"a":[1,"x"],"b":{}})")), "map[a:[1 x] b:map[]]");
  EXPECT_EQ(GoString(json::array()), "[]");
}

}  // namespace
}  // namespace strata::cli
