#include "collectors/registry.h"

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collectors/devicedir.h"
#include "collectors/drm.h"
#include "collectors/nvml.h"
#include "common/options_docs.h"
#include "common/options_yaml.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/support/temp_dir.h"

namespace devscope {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class RegistryTest : public ::testing::Test {
 protected:
  RegistryTest() {
    // An empty host: no GPUs, no NICs, no NVML.
    roots_.sysfs = absl::StrCat(root_, "/sys");
    roots_.devfs = absl::StrCat(root_, "/dev");
    std::filesystem::create_directories(roots_.sysfs);
    std::filesystem::create_directories(roots_.devfs);
    selection_.OptionsOf<NvmlOptions>("nvml")->library =
        absl::StrCat(root_, "/no-such-libnvidia-ml.so.1");
  }

  static std::vector<std::string> Names(const std::vector<std::unique_ptr<Collector>>& list) {
    std::vector<std::string> names;
    for (const auto& c : list) names.emplace_back(c->name());
    return names;
  }
  void Toggle(const char* name, CollectorToggle toggle) { selection_.Find(name)->toggle = toggle; }
  std::string& DevicedirPath() { return selection_.OptionsOf<DevicedirOptions>("devicedir")->path; }

  TempDir dir_;
  const std::string root_ = dir_.path();
  NodeRoots roots_;
  CollectorSelection selection_;
};

TEST_F(RegistryTest, AutoSkipsAbsentHardwareQuietly) {
  EXPECT_THAT(Names(MakeEnabledCollectors(selection_, roots_)), IsEmpty());
}

TEST_F(RegistryTest, DevicedirWhenAPathIsGivenEvenAnUnreadableOne) {
  DevicedirPath() = absl::StrCat(root_, "/absent");
  auto collectors = MakeEnabledCollectors(selection_, roots_);
  ASSERT_THAT(Names(collectors), ElementsAre("devicedir"));
  EXPECT_FALSE(collectors[0]->Collect().ok());  // reported as collector_up 0
}

TEST_F(RegistryTest, ForcedOnCollectorStaysAsAFailingOne) {
  DevicedirPath() = root_;
  Toggle("nvml", CollectorToggle::kOn);
  Toggle("drm", CollectorToggle::kOn);
  auto collectors = MakeEnabledCollectors(selection_, roots_);
  ASSERT_THAT(Names(collectors), ElementsAre("devicedir", "nvml", "drm"));
  auto nvml = collectors[1]->Collect();
  ASSERT_FALSE(nvml.ok());
  EXPECT_THAT(std::string(nvml.status().message()), HasSubstr("no-such-libnvidia"));
  EXPECT_FALSE(collectors[2]->Collect().ok());
}

TEST_F(RegistryTest, OffSkips) {
  Toggle("nvml", CollectorToggle::kOff);
  Toggle("drm", CollectorToggle::kOff);
  Toggle("netdev", CollectorToggle::kOff);
  EXPECT_THAT(Names(MakeEnabledCollectors(selection_, roots_)), IsEmpty());
}

TEST_F(RegistryTest, DeclaresEveryRegisteredCollectorOnce) {
  OptionSet options;
  OptionDeclarer declarer(options);
  DeclareOptions(declarer, selection_);
  ASSERT_TRUE(options.status().ok()) << options.status();
  for (const CollectorSpec& spec : CollectorRegistry()) {
    const Option* toggle = options.FindFlag(absl::StrCat("--collector.", spec.name()));
    ASSERT_NE(toggle, nullptr) << spec.name();
    EXPECT_EQ(toggle->negated_flag, absl::StrCat("--no-collector.", spec.name()));
  }
}

// A collector that exists only in this test, with one flag and one YAML key of its own.
struct ExampleOptions {
  std::string socket;       // --collector.example.socket
  std::string label = "x";  // collectors.example.label
};
void DeclareOptions(OptionDeclarer& d, ExampleOptions& o) {
  d.Flag("socket", o.socket, "Where the example devices are");
  d.Key("label", o.label, "What the example devices are called");
}

class ExampleCollector : public Collector {
 public:
  explicit ExampleCollector(std::string label) : label_(std::move(label)) {}
  absl::string_view name() const override { return "example"; }
  absl::StatusOr<std::vector<DeviceReport>> Collect() override {
    DeviceReport report;
    report.info.id = label_;
    return std::vector<DeviceReport>{report};
  }

 private:
  const std::string label_;
};

absl::StatusOr<std::unique_ptr<Collector>> NewExampleCollector(const ExampleOptions& options,
                                                               const NodeRoots&) {
  return std::unique_ptr<Collector>(std::make_unique<ExampleCollector>(options.label));
}

// Adding a collector is its file and one registry line: its toggle flags, its own flags, its
// YAML section and its docs rows all follow from the spec.
TEST(CollectorRegistryTest, ANewCollectorsFlagsSectionAndDocsFollowFromItsSpec) {
  const std::vector<CollectorSpec> registry = {CollectorSpec::Of<ExampleOptions>(
      "example", CollectorDefault::kWhenConfigured, "example devices", &NewExampleCollector)};
  CollectorSelection selection(registry);
  OptionSet options;
  OptionDeclarer declarer(options);
  DeclareOptions(declarer, selection);
  ASSERT_TRUE(options.status().ok()) << options.status();

  // Flags: the toggle, its --no- form, and the collector's own flag under --collector.example.
  const Option* toggle = options.FindFlag("--collector.example");
  ASSERT_NE(toggle, nullptr);
  EXPECT_EQ(toggle->negated_flag, "--no-collector.example");
  EXPECT_THAT(toggle->help, HasSubstr("example devices"));
  EXPECT_NE(options.FindFlag("--no-collector.example"), nullptr);
  EXPECT_NE(options.FindFlag("--collector.example.socket"), nullptr);

  // The YAML section collectors.example, closed to unknown keys.
  TempDir dir;
  WriteFile(dir.Path("good.yaml"), "collectors:\n  example:\n    label: widget\n");
  ASSERT_TRUE(LoadOptionsFile(dir.Path("good.yaml"), options).ok());
  WriteFile(dir.Path("bad.yaml"), "collectors:\n  example:\n    lable: widget\n");
  EXPECT_THAT(std::string(LoadOptionsFile(dir.Path("bad.yaml"), options).message()),
              HasSubstr("unknown key \"lable\" in collectors.example"));

  // The collector is made from its own options.
  selection.Find("example")->toggle = CollectorToggle::kOn;
  auto collectors = MakeEnabledCollectors(selection, NodeRoots{});
  ASSERT_EQ(collectors.size(), 1u);
  EXPECT_EQ((*collectors[0]->Collect())[0].info.id, "widget");

  // The docs rows and the schema.
  EXPECT_THAT(FlagTableMarkdown(options),
              HasSubstr("| `--collector.example`, `--no-collector.example` | auto |"));
  EXPECT_THAT(FlagTableMarkdown(options), HasSubstr("| `--collector.example.socket` |"));
  EXPECT_THAT(KeyTableMarkdown(options), HasSubstr("| `collectors.example.label` | text | `x` |"));
  EXPECT_THAT(ConfigJsonSchema(options), HasSubstr("\"example\""));
}

}  // namespace
}  // namespace devscope
