// The CDI specs (names, rendering, the writer) and what Allocate answers under allocate_with.
#include "deviceplugin/cdi_spec.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "deviceplugin/plugin_server.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace devscope {
namespace {

namespace fs = std::filesystem;
using google::protobuf::Struct;
using google::protobuf::Value;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Struct Parse(const std::string& json) {
  Struct s;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &s).ok()) << json;
  return s;
}

const Value& At(const Struct& s, const std::string& key) { return s.fields().at(key); }

// A widget with a node whose host and container paths differ, a variable and a read-only mount.
PluginDevice Widget(const std::string& id) {
  PluginDevice d;
  d.id = id;
  d.allocate.device_nodes.push_back({"/dev/widget0", "/dev/w", "rw"});
  d.allocate.envs.push_back({"WIDGET_VISIBLE_DEVICES", id});
  d.allocate.mounts.push_back({"/opt/share", "/usr/share/widget", true});
  d.allocate.annotations.push_back({"example.com/serial", "X1"});
  return d;
}

std::optional<DeviceNumbers> FakeNumbers(const std::string& host_path) {
  if (host_path == "/dev/widget0") return DeviceNumbers{'c', 240, 7};
  return std::nullopt;
}

TEST(CdiNamesTest, KindsFollowTheCdiGrammar) {
  for (const char* ok : {"example.com/widget", "nvidia.com/gpu", "amd.com/gpu", "example.com/w.x",
                         "intel.com/sriov_netdevice", "a/b"}) {
    EXPECT_TRUE(ValidateCdiKind(ok).ok()) << ok;
  }
  // Valid extended resource names that CDI cannot name: a vendor or class starting with a digit,
  // a trailing '-'.
  for (const char* bad : {"0example.com/widget", "example.com/1gpu", "example.com/gpu-",
                          "example.com", "example.com/a/b", "/gpu"}) {
    EXPECT_FALSE(ValidateCdiKind(bad).ok()) << bad;
  }
}

TEST(CdiNamesTest, DeviceNamesAllowPciAddressesAndUuids) {
  for (const char* ok :
       {"0000:03:00.0", "GPU-fa4e0000-0000-4000-8000-000000000000", "widget_0", "MIG-1a2b", "7"}) {
    EXPECT_TRUE(IsValidCdiDeviceName(ok)) << ok;
  }
  for (const char* bad : {"", ".hidden", "widget-", "a/b", "a=b", "a b"}) {
    EXPECT_FALSE(IsValidCdiDeviceName(bad)) << bad;
  }
  EXPECT_EQ(CdiDeviceName("example.com/widget", "widget-0"), "example.com/widget=widget-0");
}

TEST(RenderCdiSpecTest, DevicesCarryTheirNodesVariablesAndMounts) {
  const Struct spec =
      Parse(RenderCdiSpec("example.com/widget", {Widget("widget-0"), Widget(".bad")}, FakeNumbers));
  EXPECT_EQ(At(spec, "cdiVersion").string_value(), "0.5.0");
  EXPECT_EQ(At(spec, "kind").string_value(), "example.com/widget");
  const auto& devices = At(spec, "devices").list_value();
  ASSERT_EQ(devices.values_size(), 1) << "a name CDI cannot hold is left out";
  const Struct& device = devices.values(0).struct_value();
  EXPECT_EQ(At(device, "name").string_value(), "widget-0");
  const Struct& edits = At(device, "containerEdits").struct_value();
  const Struct& node = At(edits, "deviceNodes").list_value().values(0).struct_value();
  EXPECT_EQ(At(node, "path").string_value(), "/dev/w");
  EXPECT_EQ(At(node, "hostPath").string_value(), "/dev/widget0");
  EXPECT_EQ(At(node, "permissions").string_value(), "rw");
  EXPECT_EQ(At(node, "type").string_value(), "c");
  EXPECT_EQ(At(node, "major").number_value(), 240);
  EXPECT_EQ(At(node, "minor").number_value(), 7);
  EXPECT_EQ(At(edits, "env").list_value().values(0).string_value(),
            "WIDGET_VISIBLE_DEVICES=widget-0");
  const Struct& mount = At(edits, "mounts").list_value().values(0).struct_value();
  EXPECT_EQ(At(mount, "hostPath").string_value(), "/opt/share");
  EXPECT_EQ(At(mount, "containerPath").string_value(), "/usr/share/widget");
  const auto& options = At(mount, "options").list_value();
  ASSERT_EQ(options.values_size(), 2);
  EXPECT_EQ(options.values(0).string_value(), "bind");
  EXPECT_EQ(options.values(1).string_value(), "ro");
  // Annotations are not part of a 0.5.0 device: they stay in the Allocate answer.
  EXPECT_FALSE(edits.fields().contains("annotations"));
}

TEST(RenderCdiSpecTest, NodeNumbersAreLeftToTheRuntimeWhenUnknown) {
  PluginDevice gpu;
  gpu.id = "0000:03:00.0";
  gpu.allocate.device_nodes.push_back({"/dev/dri/card1", "/dev/dri/card1", ""});
  const Struct spec = Parse(RenderCdiSpec("amd.com/gpu", {gpu}, FakeNumbers));
  const Struct& node =
      At(At(At(spec, "devices").list_value().values(0).struct_value(), "containerEdits")
             .struct_value(),
         "deviceNodes")
          .list_value()
          .values(0)
          .struct_value();
  EXPECT_EQ(At(node, "hostPath").string_value(), "/dev/dri/card1");
  EXPECT_EQ(At(node, "permissions").string_value(), "rw");
  EXPECT_FALSE(node.fields().contains("major"));
  EXPECT_FALSE(node.fields().contains("type"));
}

TEST(RenderCdiSpecTest, ADotInTheClassNeedsVersion060) {
  EXPECT_EQ(At(Parse(RenderCdiSpec("example.com/w.x", {Widget("w")}, nullptr)), "cdiVersion")
                .string_value(),
            "0.6.0");
}

class CdiSpecWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/devscope-cdi.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    family_ = &prometheus::BuildGauge()
                   .Name("devscope_device_plugin_cdi_spec_current")
                   .Help("test")
                   .Register(registry_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  double Current(const std::string& resource) {
    for (const auto& family : registry_.Collect()) {
      for (const auto& metric : family.metric) {
        if (metric.label.size() == 1 && metric.label[0].value == resource)
          return metric.gauge.value;
      }
    }
    return -1;  // no series
  }

  std::string dir_;
  prometheus::Registry registry_;
  prometheus::Family<prometheus::Gauge>* family_ = nullptr;
};

TEST_F(CdiSpecWriterTest, WritesOneFilePerResourceAndRewritesOnlyOnChange) {
  CdiSpecWriter writer(dir_, FakeNumbers, family_);
  const std::string path = writer.PathOf("example.com/widget");
  EXPECT_EQ(path, dir_ + "/devscope-example.com-widget.json");
  EXPECT_EQ(writer.Write("example.com/widget", {Widget("widget-0")}),
            (std::set<std::string>{"widget-0"}));
  EXPECT_EQ(Current("example.com/widget"), 1);
  const Struct spec = Parse(ReadFile(path));
  EXPECT_EQ(At(spec, "kind").string_value(), "example.com/widget");

  struct stat before, after;
  ASSERT_EQ(stat(path.c_str(), &before), 0);
  writer.Write("example.com/widget", {Widget("widget-0")});
  ASSERT_EQ(stat(path.c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino) << "unchanged devices: not rewritten";

  EXPECT_EQ(writer.Write("example.com/widget", {Widget("widget-0"), Widget("widget-1")}),
            (std::set<std::string>{"widget-0", "widget-1"}));
  ASSERT_EQ(stat(path.c_str(), &after), 0);
  EXPECT_NE(before.st_ino, after.st_ino) << "rewritten through a rename, never in place";
  EXPECT_EQ(At(Parse(ReadFile(path)), "devices").list_value().values_size(), 2);
  // Nothing but the spec in the directory: no temporary file left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(CdiSpecWriterTest, ASpecDeletedByOthersIsWrittenAgain) {
  CdiSpecWriter writer(dir_, FakeNumbers, family_);
  writer.Write("example.com/widget", {Widget("widget-0")});
  fs::remove(writer.PathOf("example.com/widget"));
  writer.Write("example.com/widget", {Widget("widget-0")});
  EXPECT_TRUE(fs::exists(writer.PathOf("example.com/widget")));
}

TEST_F(CdiSpecWriterTest, RemovedWithTheResourceAndOnExit) {
  {
    CdiSpecWriter writer(dir_, FakeNumbers, family_);
    writer.Write("example.com/widget", {Widget("widget-0")});
    writer.Write("amd.com/gpu", {Widget("0000:03:00.0")});
    writer.Remove("example.com/widget");
    EXPECT_FALSE(fs::exists(writer.PathOf("example.com/widget")));
    EXPECT_EQ(Current("example.com/widget"), -1) << "the resource's series goes with it";
    EXPECT_TRUE(fs::exists(writer.PathOf("amd.com/gpu")));
  }
  EXPECT_TRUE(fs::is_empty(dir_)) << "the writer's destructor removes what it wrote";
}

TEST_F(CdiSpecWriterTest, LeftoversOfAKilledDevscopeAreRemovedOthersKept) {
  std::ofstream(dir_ + "/devscope-example.com-old.json") << "{}";
  std::ofstream(dir_ + "/nvidia.yaml") << "cdiVersion: 0.5.0";
  CdiSpecWriter writer(dir_, FakeNumbers, family_);
  writer.RemoveLeftovers();
  EXPECT_FALSE(fs::exists(dir_ + "/devscope-example.com-old.json"));
  EXPECT_TRUE(fs::exists(dir_ + "/nvidia.yaml")) << "another vendor's spec is not devscope's";
}

TEST_F(CdiSpecWriterTest, AnUnwritableDirectoryNamesNothingUntilItIsWritable) {
  const std::string missing = dir_ + "/not-yet";
  CdiSpecWriter writer(missing, FakeNumbers, family_);
  EXPECT_TRUE(writer.Write("example.com/widget", {Widget("widget-0")}).empty());
  EXPECT_EQ(Current("example.com/widget"), 0);
  EXPECT_TRUE(writer.Write("example.com/widget", {Widget("widget-0")}).empty());
  fs::create_directory(missing);
  EXPECT_EQ(writer.Write("example.com/widget", {Widget("widget-0")}).size(), 1u);
  EXPECT_EQ(Current("example.com/widget"), 1);
  EXPECT_TRUE(fs::exists(writer.PathOf("example.com/widget")));
}

TEST_F(CdiSpecWriterTest, AResourceCdiCannotNameGetsNoSpec) {
  CdiSpecWriter writer(dir_, FakeNumbers, family_);
  EXPECT_TRUE(writer.Write("example.com/1gpu", {Widget("widget-0")}).empty());
  EXPECT_TRUE(fs::is_empty(dir_));
  // A device CDI cannot name is left out; the others are named.
  EXPECT_EQ(writer.Write("example.com/widget", {Widget("widget-0"), Widget("bad-")}),
            (std::set<std::string>{"widget-0"}));
}

// What the plugin manager does with each snapshot: Allocate may name a device only while a spec
// on disk holds it; a resource that goes away takes its spec along.
TEST_F(CdiSpecWriterTest, ApplyNamesOnlyWhatTheSpecsOnDiskHold) {
  CdiSpecWriter writer(dir_, FakeNumbers, family_);
  std::map<std::string, std::vector<PluginDevice>> by_resource = {
      {"example.com/widget", {Widget("widget-0"), Widget("bad-")}},
      {"amd.com/gpu", {Widget("0000:03:00.0")}}};
  writer.Apply(by_resource);
  EXPECT_EQ(by_resource["example.com/widget"][0].cdi_name, "example.com/widget=widget-0");
  EXPECT_EQ(by_resource["example.com/widget"][1].cdi_name, "") << "not a CDI name: device specs";
  EXPECT_EQ(by_resource["amd.com/gpu"][0].cdi_name, "amd.com/gpu=0000:03:00.0");

  std::map<std::string, std::vector<PluginDevice>> later = {
      {"example.com/widget", {Widget("widget-0")}}};
  writer.Apply(later);
  EXPECT_FALSE(fs::exists(writer.PathOf("amd.com/gpu"))) << "the resource went away";
  EXPECT_TRUE(fs::exists(writer.PathOf("example.com/widget")));

  // The directory goes: nothing is named any more, so Allocate falls back to device specs.
  fs::remove_all(dir_);
  writer.Apply(later);
  EXPECT_EQ(later["example.com/widget"][0].cdi_name, "");
  EXPECT_EQ(Current("example.com/widget"), 0);
}

// What Allocate answers under each device_plugin.allocate_with, for a device a spec names and one
// no spec names (which gets device specs whatever the choice).
v1beta1::ContainerAllocateResponse AllocateOne(AllocateWith with, const std::string& id) {
  PluginServer::Options options;
  options.resource = "example.com/widget";
  options.socket_path = "/nonexistent/devscope-test.sock";  // never served
  options.settings.allocate_with = with;
  PluginServer server(std::move(options));
  PluginDevice named = Widget("named");
  named.cdi_name = CdiDeviceName("example.com/widget", "named");
  server.Update(ResourceDevices::Build({named, Widget("unnamed")}));
  v1beta1::AllocateRequest request;
  request.add_container_requests()->add_devices_ids(id);
  v1beta1::AllocateResponse response;
  EXPECT_TRUE(server.Allocate(request, &response).ok());
  return response.container_responses(0);
}

TEST(AllocateWithTest, DeviceSpecsCdiNamesOrBoth) {
  const auto specs = AllocateOne(AllocateWith::kDeviceSpecs, "named");
  EXPECT_EQ(specs.devices_size(), 1);
  EXPECT_EQ(specs.mounts_size(), 1);
  EXPECT_EQ(specs.envs().at("WIDGET_VISIBLE_DEVICES"), "named");
  EXPECT_EQ(specs.cdi_devices_size(), 0);

  const auto cdi = AllocateOne(AllocateWith::kCdi, "named");
  ASSERT_EQ(cdi.cdi_devices_size(), 1);
  EXPECT_EQ(cdi.cdi_devices(0).name(), "example.com/widget=named");
  EXPECT_EQ(cdi.devices_size(), 0);
  EXPECT_EQ(cdi.mounts_size(), 0);
  EXPECT_TRUE(cdi.envs().empty());
  EXPECT_EQ(cdi.annotations().at("example.com/serial"), "X1") << "annotations are not in a spec";

  const auto both = AllocateOne(AllocateWith::kBoth, "named");
  EXPECT_EQ(both.cdi_devices_size(), 1);
  EXPECT_EQ(both.devices_size(), 1);

  const auto unnamed = AllocateOne(AllocateWith::kCdi, "unnamed");
  EXPECT_EQ(unnamed.cdi_devices_size(), 0);
  EXPECT_EQ(unnamed.devices_size(), 1) << "no spec names it: device specs";
}

TEST(StatDeviceNodeTest, NumbersOfACharacterDeviceAndNothingForAFile) {
  const std::optional<DeviceNumbers> null = StatDeviceNode("/dev/null");
  ASSERT_TRUE(null.has_value());
  EXPECT_EQ(null->type, 'c');
  EXPECT_EQ(null->major, 1u);
  EXPECT_EQ(null->minor, 3u);
  EXPECT_FALSE(StatDeviceNode("/etc/hostname").has_value());
  EXPECT_FALSE(StatDeviceNode("/no/such/node").has_value());
}

}  // namespace
}  // namespace devscope
