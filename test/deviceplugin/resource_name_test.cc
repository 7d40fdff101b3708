#include "deviceplugin/resource_name.h"

#include <string>

#include "gmock/gmock.h"
#include "common/log.h"
#include "gtest/gtest.h"

namespace devscope {
namespace {

TEST(ResourceNameTest, AcceptsExtendedResources) {
  for (const char* name : {"example.com/widget", "nvidia.com/gpu", "intel.com/sriov_netdevice",
                           "a.b-c.d/x", "example.com/W1.x-y_z", "devscope.io/w"}) {
    EXPECT_TRUE(ValidateResourceName(name).ok()) << name << ": " << ValidateResourceName(name);
  }
  EXPECT_TRUE(ValidateResourceName("example.com/" + std::string(63, 'a')).ok());
}

TEST(ResourceNameTest, RefusesWhatTheKubeletRefuses) {
  const std::string long_part = "example.com/" + std::string(64, 'a');
  const std::string label(60, 'a');
  // 4 labels of 60 and 3 dots: 243 characters, the most "requests." leaves is 244.
  const std::string prefix_243 = label + "." + label + "." + label + "." + label;
  const std::string long_prefix = prefix_243 + ".a/w";  // 245
  for (const std::string& name :
       {std::string(""), std::string("widget"), std::string("kubernetes.io/widget"),
        std::string("foo.kubernetes.io/widget"), std::string("requests.example.com/widget"),
        std::string("example.com/"), std::string("/widget"), std::string("a/b/c"),
        std::string("Example.com/widget"), std::string("example.com/-widget"),
        std::string("example.com/widget-"), std::string("example.com/wid get"),
        std::string("exa_mple.com/widget"), std::string("example..com/widget"), long_part,
        long_prefix}) {
    absl::Status status = ValidateResourceName(name);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << "accepted: " << name;
    // The name is quoted as logs quote outside input: whole when short, cut when long.
    EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr(QuoteForLog(name)));
  }
  EXPECT_TRUE(ValidateResourceName(prefix_243 + "/w").ok());
  EXPECT_FALSE(ValidateResourceName(std::string(64, 'a') + ".com/w").ok());  // label > 63
}

TEST(ResourceNameTest, SocketNames) {
  EXPECT_EQ(PluginSocketName("example.com/widget"), "devscope-example.com_widget.sock");
  std::string long_name = std::string(200, 'a') + ".com/" + std::string(60, 'b');
  std::string socket = PluginSocketName(long_name);
  EXPECT_LE(socket.size(), 70u);
  EXPECT_EQ(socket, PluginSocketName(long_name));  // stable
  EXPECT_NE(socket, PluginSocketName(std::string(200, 'a') + ".com/" + std::string(60, 'c')));
}

}  // namespace
}  // namespace devscope
