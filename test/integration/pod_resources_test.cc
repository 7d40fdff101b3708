// The real devscope binary against the pod-resources stand-in over real unix sockets: what
// /metrics says about pods, and how it copes with a kubelet that is missing, restarts, throttles,
// lacks methods or answers big. promtool checks every scrape.
#include <sys/stat.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "demo/standin_pod_resources.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/integration/devscope_process.h"

namespace devscope {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kInterval = absl::Milliseconds(100);
// "Within two intervals" plus room for a scrape and for a machine shared with compilers.
const absl::Duration kTwoIntervals = 2 * kInterval + absl::Milliseconds(150);

std::vector<v1::PodResources> Pods() {
  return {
      MakePod("ml", "trainer",
              {MakeContainer("log-shipper", {MakeDevices("example.com/nic", {"0000:3b:00.2"})}),
               MakeContainer("main",
                             {MakeDevices("nvidia.com/gpu", {"GPU-aaa", "GPU-bbb"}, {0}),
                              MakeDevices("example.com/widget", {"w0"})},
                             {2, 3, 4, 5, 10}, {MakeMemory("hugepages-1Gi", 2ULL << 30, {0})},
                             {MakeClaim("ml", "gpu-claim", "gpu.example.com", "node-a", "gpu-3",
                                        "share-1", {"example.com/gpu=gpu3"})})}),
      MakePod("web", "shared",
              {MakeContainer("a", {MakeDevices("nvidia.com/gpu", {"GPU-ccc::1"}, {1})}),
               MakeContainer("b", {MakeDevices("nvidia.com/gpu", {"GPU-ccc::1"}, {1})})}),
  };
}

class PodResourcesIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    socket_ = dir_ + "/kubelet.sock";
    plugins_dir_ = dir_ + "/plugins";
    ASSERT_EQ(mkdir(plugins_dir_.c_str(), 0755), 0);
  }
  void TearDown() override {
    devscope_.reset();
    standin_.reset();
    RemoveTree(dir_);
  }

  void StartStandin() {
    auto standin = PodResourcesStandin::Start(socket_);
    ASSERT_TRUE(standin.ok()) << standin.status();
    standin_ = *std::move(standin);
  }

  void StartDevscope(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--kubelet.pod-resources-socket",
                                     socket_,
                                     "--web.listen-address",
                                     "127.0.0.1:0",
                                     "--pod-resources.interval",
                                     "100ms",
                                     "--no-device-plugin",
                                     "--kubelet.device-plugins-dir",
                                     plugins_dir_,
                                     "--no-collector.nvml",
                                     "--no-collector.drm",
                                     "--no-collector.netdev"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto process = DevscopeProcess::Start(args);
    ASSERT_TRUE(process.ok()) << process.status();
    devscope_ = *std::move(process);
  }

  // Scrapes /metrics, checks it with promtool and returns the body.
  std::string Scrape() {
    HttpResponse response = devscope_->HttpGet("/metrics");
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(PromtoolCheck(response.body), "");
    return response.body;
  }

  // Scrapes until `done(body)` holds or `timeout` passes; how long it took, or nullopt.
  std::optional<absl::Duration> ScrapeUntil(const std::function<bool(const std::string&)>& done,
                                            absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time start = absl::Now();
    while (absl::Now() - start < timeout) {
      HttpResponse response = devscope_->HttpGet("/metrics");
      if (response.status == 200 && done(response.body)) {
        const absl::Duration took = absl::Now() - start;
        EXPECT_EQ(PromtoolCheck(response.body), "");
        return took;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return std::nullopt;
  }

  static bool HasDevice(const std::string& body, const std::string& pod,
                        const std::string& container, const std::string& device) {
    return !FindSamples(body, "devscope_container_device_info",
                        {{"pod", pod}, {"container", container}, {"device", device}})
                .empty();
  }

  static double Value(const std::string& body, const std::string& name,
                      const std::map<std::string, std::string>& labels = {}) {
    auto samples = FindSamples(body, name, labels);
    return samples.empty() ? -1 : samples[0].value;
  }

  std::string dir_;
  std::string socket_;
  std::string plugins_dir_;
  std::unique_ptr<PodResourcesStandin> standin_;
  std::unique_ptr<DevscopeProcess> devscope_;
};

TEST_F(PodResourcesIntegrationTest, SeriesAppearAndVanishWithinTwoIntervals) {
  StartStandin();
  StartDevscope();
  ASSERT_TRUE(ScrapeUntil(
      [](const std::string& body) { return Value(body, "devscope_pod_resources_up") == 1; }));

  standin_->SetPods(Pods());
  auto appeared = ScrapeUntil(
      [](const std::string& body) { return HasDevice(body, "trainer", "main", "GPU-bbb"); });
  ASSERT_TRUE(appeared.has_value()) << Scrape();
  EXPECT_LE(*appeared, kTwoIntervals);

  const std::string body = Scrape();
  auto gpu = FindSamples(body, "devscope_container_device_info",
                         {{"namespace", "ml"},
                          {"pod", "trainer"},
                          {"container", "main"},
                          {"resource", "nvidia.com/gpu"},
                          {"device", "GPU-aaa"},
                          {"numa_node", "0"}});
  ASSERT_EQ(gpu.size(), 1u) << body;
  EXPECT_EQ(gpu[0].value, 1);
  // The sidecar, the device without topology, and the replica held by two containers.
  EXPECT_TRUE(HasDevice(body, "trainer", "log-shipper", "0000:3b:00.2")) << body;
  EXPECT_TRUE(HasDevice(body, "trainer", "main", "w0")) << body;
  EXPECT_TRUE(HasDevice(body, "shared", "a", "GPU-ccc::1")) << body;
  EXPECT_TRUE(HasDevice(body, "shared", "b", "GPU-ccc::1")) << body;
  EXPECT_EQ(Value(body, "devscope_container_exclusive_cpus",
                  {{"pod", "trainer"}, {"container", "main"}, {"cpus", "2-5,10"}}),
            5)
      << body;
  EXPECT_EQ(Value(body, "devscope_container_memory_bytes",
                  {{"pod", "trainer"}, {"memory_type", "hugepages-1Gi"}, {"numa_node", "0"}}),
            static_cast<double>(2ULL << 30))
      << body;
  EXPECT_EQ(Value(body, "devscope_container_dynamic_resource_info",
                  {{"pod", "trainer"},
                   {"claim_namespace", "ml"},
                   {"claim_name", "gpu-claim"},
                   {"driver", "gpu.example.com"},
                   {"pool", "node-a"},
                   {"device", "gpu-3"}}),
            1)
      << body;
  EXPECT_EQ(Value(body, "devscope_pod_resources_pods"), 2) << body;

  standin_->SetPods({Pods()[1]});
  auto vanished = ScrapeUntil(
      [](const std::string& body) { return !HasDevice(body, "trainer", "main", "GPU-bbb"); });
  ASSERT_TRUE(vanished.has_value());
  EXPECT_LE(*vanished, kTwoIntervals);
  const std::string after = Scrape();
  EXPECT_TRUE(FindSamples(after, "devscope_container_device_info", {{"pod", "trainer"}}).empty());
  EXPECT_TRUE(
      FindSamples(after, "devscope_container_dynamic_resource_info", {{"pod", "trainer"}}).empty());
  EXPECT_TRUE(HasDevice(after, "shared", "b", "GPU-ccc::1"));
  EXPECT_EQ(devscope_->Stop(), 0);
}

TEST_F(PodResourcesIntegrationTest, KubeletAbsentAtStart) {
  StartDevscope();
  std::string body = Scrape();
  EXPECT_EQ(Value(body, "devscope_pod_resources_up"), 0) << body;
  EXPECT_TRUE(FindSamples(body, "devscope_container_device_info").empty());
  EXPECT_THAT(devscope_->Stderr(), HasSubstr("pod-resources down"));

  StartStandin();
  standin_->SetPods(Pods());
  // The failure backoff is capped at 5 s.
  ASSERT_TRUE(
      ScrapeUntil([](const std::string& b) { return HasDevice(b, "trainer", "main", "GPU-aaa"); },
                  absl::Seconds(8)))
      << devscope_->Stderr();
  EXPECT_EQ(Value(Scrape(), "devscope_pod_resources_up"), 1);
  EXPECT_TRUE(devscope_->Alive());
}

TEST_F(PodResourcesIntegrationTest, KubeletRestartAndOutageMidRun) {
  StartStandin();
  standin_->SetPods(Pods());
  StartDevscope();
  ASSERT_TRUE(
      ScrapeUntil([](const std::string& b) { return HasDevice(b, "trainer", "main", "GPU-aaa"); }));

  // Kubelet gone: up 0, the last picture is still served.
  standin_->Stop();
  ASSERT_TRUE(
      ScrapeUntil([](const std::string& b) { return Value(b, "devscope_pod_resources_up") == 0; }));
  EXPECT_TRUE(HasDevice(Scrape(), "trainer", "main", "GPU-aaa"));

  // Back, with other pods.
  ASSERT_TRUE(standin_->Restart().ok());
  standin_->SetPods({MakePod("web", "fresh",
                             {MakeContainer("c", {MakeDevices("nvidia.com/gpu", {"GPU-new"})})})});
  ASSERT_TRUE(
      ScrapeUntil([](const std::string& b) { return HasDevice(b, "fresh", "c", "GPU-new"); },
                  absl::Seconds(8)));

  // A restart while running: recovered within a few intervals.
  ASSERT_TRUE(standin_->Restart().ok());
  standin_->SetPods(Pods());
  auto recovered =
      ScrapeUntil([](const std::string& b) { return HasDevice(b, "trainer", "main", "GPU-aaa"); });
  ASSERT_TRUE(recovered.has_value());
  EXPECT_LE(*recovered, absl::Seconds(2));
  EXPECT_EQ(Value(Scrape(), "devscope_pod_resources_up"), 1);
  EXPECT_TRUE(devscope_->Alive());
}

TEST_F(PodResourcesIntegrationTest, GetMissingAndAllocatableDisabled) {
  StartStandin();
  standin_->SetGetMode(MethodMode::kUnimplemented);
  standin_->SetAllocatableMode(MethodMode::kDisabled);
  standin_->SetPods(Pods());
  StartDevscope();
  ASSERT_TRUE(ScrapeUntil([](const std::string& b) {
    return Value(b, "devscope_pod_resources_method_supported", {{"method", "Get"}}) == 0 &&
           Value(b, "devscope_pod_resources_method_supported",
                 {{"method", "GetAllocatableResources"}}) == 0;
  })) << Scrape();
  const std::string body = Scrape();
  EXPECT_EQ(Value(body, "devscope_pod_resources_method_supported", {{"method", "List"}}), 1);
  EXPECT_TRUE(HasDevice(body, "trainer", "main", "GPU-aaa"));
  EXPECT_EQ(Value(body, "devscope_pod_resources_up"), 1);
}

TEST_F(PodResourcesIntegrationTest, ThrottledKubeletGetsNoCallStorm) {
  StartStandin();
  standin_->SetPods(Pods());
  standin_->SetRateLimit(1, 1);
  StartDevscope();
  const int before = standin_->CallCount("List");
  absl::SleepFor(absl::Seconds(3));
  // Every 100 ms without backoff would be ~30 List calls.
  EXPECT_LT(standin_->CallCount("List") - before, 20);
  const std::string body = Scrape();
  EXPECT_GE(Value(body, "devscope_pod_resources_requests_total",
                  {{"method", "List"}, {"code", "RESOURCE_EXHAUSTED"}}),
            1)
      << body;
  EXPECT_TRUE(HasDevice(body, "trainer", "main", "GPU-aaa"));
}

// A 20 MiB List reply whose bulk (CDI names) does not turn into series.
std::vector<v1::PodResources> BigPods() {
  std::vector<std::string> cdi;
  for (int i = 0; i < 100000; ++i) {
    cdi.push_back(absl::StrCat("vendor.example.com/device=", std::string(190, 'x'), i));
  }
  std::vector<v1::PodResources> pods = Pods();
  pods.push_back(MakePod("big", "claims",
                         {MakeContainer("c", {MakeDevices("nvidia.com/gpu", {"GPU-big"})}, {}, {},
                                        {MakeClaim("big", "huge", "d.example.com", "p", "dev0",
                                                   std::nullopt, std::move(cdi))})}));
  return pods;
}

TEST_F(PodResourcesIntegrationTest, TwentyMiBListFitsTheDefaultLimit) {
  StartStandin();
  std::vector<v1::PodResources> pods = BigPods();
  v1::ListPodResourcesResponse whole;
  for (const auto& p : pods) *whole.add_pod_resources() = p;
  ASSERT_GT(whole.ByteSizeLong(), 20u << 20);
  standin_->SetPods(std::move(pods));
  StartDevscope();
  ASSERT_TRUE(ScrapeUntil([](const std::string& b) {
    return HasDevice(b, "claims", "c", "GPU-big");
  })) << devscope_->Stderr();
}

TEST_F(PodResourcesIntegrationTest, ListOverTheLimitIsAClearError) {
  StartStandin();
  standin_->SetPods(Pods());
  StartDevscope({"--pod-resources.max-message-size", "4MiB"});
  ASSERT_TRUE(
      ScrapeUntil([](const std::string& b) { return HasDevice(b, "trainer", "main", "GPU-aaa"); }));
  standin_->SetPods(BigPods());
  ASSERT_TRUE(
      ScrapeUntil([](const std::string& b) { return Value(b, "devscope_pod_resources_up") == 0; }));
  const std::string body = Scrape();
  EXPECT_TRUE(HasDevice(body, "trainer", "main", "GPU-aaa"));  // the last good picture
  EXPECT_FALSE(HasDevice(body, "claims", "c", "GPU-big"));
  EXPECT_THAT(devscope_->Stderr(), HasSubstr("max-message-size"));
  EXPECT_TRUE(devscope_->Alive());
}

class PodCommandTest : public PodResourcesIntegrationTest {
 protected:
  RunResult Pod(const std::string& target) {
    return RunDevscope({"pod", target, "--kubelet.pod-resources-socket", socket_});
  }
};

TEST_F(PodCommandTest, PrintsThePodThroughGet) {
  StartStandin();
  standin_->SetPods(Pods());
  RunResult result = Pod("ml/trainer");
  EXPECT_EQ(result.exit_code, 0) << result.stderr_text;
  EXPECT_THAT(result.stdout_text, HasSubstr("pod ml/trainer"));
  EXPECT_THAT(result.stdout_text, HasSubstr("GPU-bbb"));
  EXPECT_THAT(result.stdout_text, HasSubstr("2-5,10"));
  EXPECT_THAT(result.stdout_text, HasSubstr("hugepages-1Gi"));
  EXPECT_THAT(result.stdout_text, HasSubstr("gpu-3"));
  EXPECT_EQ(standin_->CallCount("Get"), 1);
  EXPECT_EQ(standin_->CallCount("List"), 0);
}

TEST_F(PodCommandTest, FallsBackToListWhenGetIsMissing) {
  StartStandin();
  standin_->SetPods(Pods());
  for (MethodMode mode : {MethodMode::kUnimplemented, MethodMode::kDisabled}) {
    standin_->SetGetMode(mode);
    RunResult result = Pod("web/shared");
    EXPECT_EQ(result.exit_code, 0) << result.stderr_text;
    EXPECT_THAT(result.stdout_text, HasSubstr("GPU-ccc::1"));
    EXPECT_THAT(result.stderr_text, HasSubstr("using List"));
  }
  EXPECT_EQ(standin_->CallCount("List"), 2);
}

TEST_F(PodCommandTest, NotFoundAndMalformed) {
  StartStandin();
  standin_->SetPods(Pods());
  RunResult missing = Pod("ml/nope");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.stderr_text, HasSubstr("not found"));
  standin_->SetGetMode(MethodMode::kUnimplemented);
  EXPECT_EQ(Pod("ml/nope").exit_code, 1);

  for (const char* bad : {"nope", "/name", "ns/", "a/b/c"}) {
    RunResult result = Pod(bad);
    EXPECT_EQ(result.exit_code, 2) << bad;
    EXPECT_FALSE(result.stderr_text.empty()) << bad;
  }
}

TEST_F(PodCommandTest, KubeletUnreachable) {
  RunResult result = Pod("ml/trainer");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.stderr_text, HasSubstr("UNAVAILABLE"));
}

}  // namespace
}  // namespace devscope
