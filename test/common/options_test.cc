// The option declaration layer: declarations, the YAML loader, checks and the generated docs.
#include "common/options.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/options_docs.h"
#include "common/options_yaml.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace devscope {
namespace {

using ::testing::HasSubstr;

struct Entry {
  bool on = false;
  std::string mode = "a";
};
void DeclareOptions(OptionDeclarer& d, Entry& o) {
  d.Key("on", o.on, "On");
  d.Key("mode", ChoiceValue(o.mode, {"a", "b"}), "Mode");
}

struct Example {
  std::string both = "default";  // --example.both and example.both
  std::string dir;               // --example.dir
  bool enabled = true;
  std::vector<uint64_t> list = {1, 2};
  std::optional<double> number;
  absl::Duration every = absl::Seconds(5);
  uint64_t size = 64 << 20;
  std::map<std::string, Entry> entries;
};

class OptionsTest : public ::testing::Test {
 protected:
  OptionsTest() {
    char tmpl[] = "/tmp/optestXXXXXX";
    dir_ = mkdtemp(tmpl);
    OptionDeclarer d(set_);
    d.FlagAndKey("example.both", "example.both", TextValue(o_.both), "Both");
    d.Flag("example.dir", o_.dir, "A directory").MustBeDirectory([this] { return o_.enabled; });
    d.Flag("example.enabled", o_.enabled, "Enabled");
    OptionDeclarer section = d.Under("", "example");
    section.Key("list", o_.list, "A list");
    section.Key("number", o_.number, "A number");
    section.Key("every", DurationValue(o_.every, /*zero_allowed=*/true), "How often");
    section.Key("size", ByteSizeValue(o_.size), "How much");
    section.Key("entries", MapValue(o_.entries, &DeclareOptions, "NAME"), "Entries");
  }
  ~OptionsTest() override { std::filesystem::remove_all(dir_); }

  absl::Status Load(const std::string& yaml) {
    const std::string path = absl::StrCat(dir_, "/c.yaml");
    std::ofstream(path) << yaml;
    return LoadOptionsFile(path, set_);
  }

  std::string dir_;
  Example o_;
  OptionSet set_;
};

TEST_F(OptionsTest, DefaultsAreTheFieldsAtDeclaration) {
  ASSERT_TRUE(set_.status().ok()) << set_.status();
  EXPECT_EQ(set_.FindFlag("--example.both")->default_text, "default");
  EXPECT_EQ(set_.FindFlag("--no-example.enabled")->default_text, "on");
  const std::string keys = KeyTableMarkdown(set_);
  EXPECT_THAT(keys, HasSubstr("| `example.size` | size | `64MiB` | How much |"));
  EXPECT_THAT(keys, HasSubstr("| `example.every` | duration, or 0 | `5s` |"));
  EXPECT_THAT(keys, HasSubstr("| `example.list` | list of integers | `[1, 2]` |"));
  EXPECT_THAT(keys, HasSubstr("| `example.entries.NAME.mode` | `a`, `b` | `a` | Mode |"));
  EXPECT_THAT(FlagTableMarkdown(set_),
              HasSubstr("| `--example.enabled`, `--no-example.enabled` | on | Enabled |"));
}

TEST_F(OptionsTest, MistakesInDeclarationsAreCaught) {
  OptionSet set;
  OptionDeclarer d(set);
  std::string a, b;
  d.Flag("twice", a, "A");
  d.Flag("twice", b, "B");
  EXPECT_THAT(std::string(set.status().message()), HasSubstr("\"--twice\" is declared twice"));
  OptionSet malformed;
  OptionDeclarer(malformed).Key("Bad.Key", a, "A");
  EXPECT_FALSE(malformed.status().ok());
  OptionSet list_flag;
  std::vector<uint64_t> list;
  OptionDeclarer(list_flag).Flag("list", list, "L");
  EXPECT_FALSE(list_flag.status().ok());
}

TEST_F(OptionsTest, LoadsEveryKindOfValue) {
  ASSERT_TRUE(Load("example:\n  both: file\n  list: [7]\n  number: 2.5\n  every: 0\n"
                   "  size: 1KiB\n  entries:\n    x.io/y: {on: yes, mode: b}\n    z: ~\n")
                  .ok());
  EXPECT_EQ(o_.both, "file");
  EXPECT_EQ(o_.list, std::vector<uint64_t>{7});
  EXPECT_EQ(o_.number, 2.5);
  EXPECT_EQ(o_.every, absl::ZeroDuration());
  EXPECT_EQ(o_.size, 1024u);
  ASSERT_EQ(o_.entries.size(), 2u);
  EXPECT_TRUE(o_.entries["x.io/y"].on);
  EXPECT_EQ(o_.entries["x.io/y"].mode, "b");
  EXPECT_EQ(o_.entries["z"].mode, "a");
}

TEST_F(OptionsTest, AFlagGivenWinsOverTheFile) {
  Option* both = set_.FindFlag("--example.both");
  ASSERT_TRUE(both->value.parse("flag").ok());
  both->source = OptionSource::kFlag;
  ASSERT_TRUE(Load("example:\n  both: file\n").ok());
  EXPECT_EQ(o_.both, "flag");
}

TEST_F(OptionsTest, BadValuesNameTheFileLineAndKey) {
  const std::string file = absl::StrCat(dir_, "/c.yaml");
  EXPECT_EQ(Load("example:\n  list: 7\n").message(), file + ":2: example.list must be a list");
  EXPECT_THAT(std::string(Load("example:\n  list: [1, -2]\n").message()),
              HasSubstr(":2: example.list: \"-2\" is not a non-negative integer"));
  EXPECT_THAT(std::string(Load("example:\n  every: soon\n").message()),
              HasSubstr(":2: example.every: \"soon\""));
  EXPECT_THAT(std::string(Load("example:\n  number: [1]\n").message()),
              HasSubstr("example.number must be a single value"));
  EXPECT_THAT(std::string(Load("example:\n  entries:\n    a: {mode: c}\n").message()),
              HasSubstr(":3: example.entries.a.mode: \"c\" is not one of a, b"));
  EXPECT_THAT(std::string(Load("example:\n  entries:\n    a: {off: true}\n").message()),
              HasSubstr("unknown key \"off\" in example.entries.a (known: mode, on)"));
  EXPECT_THAT(std::string(Load("example:\n  entries:\n    a: {on: maybe}\n").message()),
              HasSubstr("example.entries.a.on: expected true or false"));
  EXPECT_THAT(std::string(Load("other: 1\n").message()),
              HasSubstr(":1: unknown key \"other\" in the top level (known: example)"));
  EXPECT_THAT(std::string(Load("example: 3\n").message()), HasSubstr("example must be a mapping"));
}

TEST_F(OptionsTest, DirectoriesAreCheckedOnlyWhenGivenAndWhileTheyApply) {
  o_.dir = "/nonexistent/dir";
  EXPECT_TRUE(set_.RunChecks().ok());  // the default may be absent
  set_.FindFlag("--example.dir")->source = OptionSource::kFlag;
  EXPECT_EQ(set_.RunChecks().message(), "--example.dir: /nonexistent/dir is not a directory");
  o_.enabled = false;
  EXPECT_TRUE(set_.RunChecks().ok());
  o_.enabled = true;
  o_.dir = dir_;
  EXPECT_TRUE(set_.RunChecks().ok());
}

TEST(FormatByteSizeTest, LargestUnitThatDivides) {
  EXPECT_EQ(FormatByteSize(64ULL << 20), "64MiB");
  EXPECT_EQ(FormatByteSize(16000000), "16MB");
  EXPECT_EQ(FormatByteSize(1536), "1536");
  EXPECT_EQ(FormatByteSize(3ULL << 30), "3GiB");
}

}  // namespace
}  // namespace devscope
