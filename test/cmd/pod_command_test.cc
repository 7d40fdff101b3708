// `devscope pod` against the fake client: which answers fall back to List and which do not, and
// the table it prints. The integration tests run it against the stand-in through the binary.
#include "cmd/pod_command.h"

#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kubelet/convert.h"
#include "kubelet/fake_pod_resources_client.h"
#include "test/support/rich_pods.h"

namespace devscope {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

class PodCommandTest : public ::testing::Test {
 protected:
  PodCommandTest() { client_.SetPods(RichPods()); }

  int Run(const std::string& target) {
    out_.str("");
    err_.str("");
    absl::StatusOr<PodRef> pod = ParsePodRef(target);
    EXPECT_TRUE(pod.ok()) << pod.status();
    return RunPodCommand(client_, "/run/kubelet.sock", *pod, out_, err_);
  }

  FakePodResourcesClient client_;
  std::ostringstream out_, err_;
};

TEST_F(PodCommandTest, GetAnswersWithoutList) {
  EXPECT_EQ(Run("web/shared"), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("GPU-ccc::1"));
  EXPECT_THAT(err_.str(), IsEmpty());
  EXPECT_EQ(client_.Calls(PodResourcesMethod::kList), 0);
}

TEST_F(PodCommandTest, GetNotServedFallsBackToList) {
  client_.SetStatus(PodResourcesMethod::kGet,
                    absl::UnknownError("PodResources API Get method disabled"));
  EXPECT_EQ(Run("web/shared"), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("GPU-ccc::1"));
  EXPECT_THAT(err_.str(), HasSubstr("does not serve Get (UNKNOWN: "));
  EXPECT_THAT(err_.str(), HasSubstr("using List"));
  EXPECT_EQ(Run("web/nope"), 1);
  EXPECT_THAT(err_.str(), HasSubstr("pod web/nope not found"));
  EXPECT_EQ(client_.Calls(PodResourcesMethod::kList), 2);
}

TEST_F(PodCommandTest, APassingFailureDoesNotFallBack) {
  client_.SetStatus(PodResourcesMethod::kGet, absl::UnavailableError("connection refused"));
  EXPECT_EQ(Run("web/shared"), 1);
  EXPECT_THAT(err_.str(),
              HasSubstr("Get failed: UNAVAILABLE: connection refused (socket /run/kubelet.sock)"));
  EXPECT_EQ(client_.Calls(PodResourcesMethod::kList), 0);
}

TEST_F(PodCommandTest, NotFoundAndMalformed) {
  EXPECT_EQ(Run("ml/nope"), 1);
  EXPECT_THAT(err_.str(), HasSubstr("pod ml/nope not found"));
  EXPECT_EQ(client_.Calls(PodResourcesMethod::kList), 0);
  // A malformed argument never reaches the kubelet: the command line refuses it (exit 2).
  for (const char* bad : {"nope", "/name", "ns/", "a/b/c"}) {
    absl::StatusOr<PodRef> pod = ParsePodRef(bad);
    ASSERT_FALSE(pod.ok()) << bad;
    EXPECT_THAT(std::string(pod.status().message()), HasSubstr("is not NAMESPACE/NAME")) << bad;
  }
}

TEST(PodTableTest, PrintsEveryKindOfResource) {
  v1::ListPodResourcesResponse list;
  for (const auto& pod : RichPods()) *list.add_pod_resources() = pod;
  std::ostringstream out;
  PrintPodTable(ConvertPods(list)[0], out);
  const std::string text = out.str();
  EXPECT_TRUE(absl::StartsWith(text, "pod ml/trainer\nCONTAINER")) << text;
  EXPECT_TRUE(absl::StrContains(text, "GPU-bbb")) << text;
  EXPECT_TRUE(absl::StrContains(text, "2-5,10")) << text;
  EXPECT_TRUE(absl::StrContains(text, "hugepages-1Gi")) << text;
  EXPECT_TRUE(absl::StrContains(text, "2147483648 (2.0GiB)")) << text;
  EXPECT_TRUE(absl::StrContains(text, "claim=ml/gpu-claim share=4fd2a9c0-share")) << text;
  EXPECT_TRUE(absl::StrContains(text, "log-shipper")) << text;
}

}  // namespace
}  // namespace devscope
