// Faults on the kubelet's side, through the real binary over real unix sockets (issue 12, item
// 5): a kubelet that accepts connections and never answers (scrapes stay prompt; SIGTERM ends the
// process cleanly within 1 s with a Register or a List in flight), a kubelet that comes back from
// a restart serving other methods, the pod-resources and device-plugins directories deleted and
// recreated, and a full file system where the plugin sockets go.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "demo/standin_pod_resources.h"
#include "demo/standin_registration.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/integration/devscope_process.h"

namespace devscope {
namespace {

using ::testing::HasSubstr;

constexpr char kWidget[] = "example.com/widget";

// A unix socket that accepts every connection and never reads or writes: a kubelet that hangs.
class SilentSocket {
 public:
  explicit SilentSocket(const std::string& path) : wake_(eventfd(0, EFD_CLOEXEC)) {
    listener_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    unlink(path.c_str());
    ok_ = bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
          listen(listener_, 64) == 0;
    thread_ = std::thread([this] { Accept(); });
  }
  ~SilentSocket() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_, &one, sizeof(one));
    thread_.join();
    for (int fd : held_) close(fd);
    close(listener_);
    close(wake_);
  }
  bool ok() const { return ok_; }
  int accepted() const { return accepted_.load(); }

 private:
  void Accept() {
    while (true) {
      pollfd fds[2] = {{listener_, POLLIN, 0}, {wake_, POLLIN, 0}};
      if (poll(fds, 2, -1) < 0 || (fds[1].revents & POLLIN)) return;
      const int fd = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        held_.push_back(fd);  // only this thread touches held_ until the destructor joins it
        ++accepted_;
      }
    }
  }

  const int wake_;
  int listener_ = -1;
  bool ok_ = false;
  std::vector<int> held_;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout) {
  for (const absl::Time deadline = absl::Now() + timeout; absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(20))) {
    if (done()) return true;
  }
  return done();
}

void WriteText(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

class KubeletFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    for (const char* sub : {"/dp", "/pr", "/devices", "/devices/w0"}) {
      ASSERT_EQ(mkdir((dir_ + sub).c_str(), 0755), 0);
    }
    WriteText(dir_ + "/devices/w0/resource", absl::StrCat(kWidget, "\n"));
    WriteText(dir_ + "/devices/w0/allocate", "device /dev/null /dev/widget rw\n");
  }
  void TearDown() override {
    devscope_.reset();
    RemoveTree(dir_);
  }

  void StartDevscope(bool plugin, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--web.listen-address=127.0.0.1:0",
                                     "--pod-resources.interval=200ms",
                                     "--kubelet.pod-resources-socket=" + dir_ + "/pr/kubelet.sock",
                                     "--kubelet.device-plugins-dir=" + dir_ + "/dp",
                                     "--collector.devicedir.path=" + dir_ + "/devices",
                                     DevicedirOwnerFlag(),
                                     plugin ? "--device-plugin" : "--no-device-plugin",
                                     "--no-collector.nvml",
                                     "--no-collector.drm",
                                     "--no-collector.netdev"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto process = DevscopeProcess::Start(args);
    ASSERT_TRUE(process.ok()) << process.status();
    devscope_ = *std::move(process);
  }

  // GETs `path` and returns how long the answer took; fails the test on anything but 200.
  absl::Duration TimedGet(const std::string& path) {
    const absl::Time start = absl::Now();
    const HttpResponse response = devscope_->HttpGet(path);
    EXPECT_EQ(response.status, 200) << path;
    if (path == "/metrics") {
      EXPECT_EQ(PromtoolCheck(response.body), "");
    }
    return absl::Now() - start;
  }

  // SIGTERM: the process must exit with status 0 within 1 s.
  void ExpectCleanStopWithinASecond() {
    const absl::Time start = absl::Now();
    const int status = devscope_->Stop(absl::Seconds(5));
    const absl::Duration took = absl::Now() - start;
    std::printf("SIGTERM -> exit %d after %s\n", status, absl::FormatDuration(took).c_str());
    EXPECT_EQ(status, 0) << devscope_->Stderr();
    EXPECT_LT(took, absl::Seconds(1)) << devscope_->Stderr();
  }

  double Metric(const std::string& name, const std::map<std::string, std::string>& labels = {}) {
    auto samples = FindSamples(devscope_->HttpGet("/metrics").body, name, labels);
    return samples.empty() ? -1 : samples[0].value;
  }

  std::string dir_;
  std::unique_ptr<DevscopeProcess> devscope_;
};

// Before the fix, 3 runs in 4 aborted in gRPC ("assertion failed: prior > 0") when the Register
// callback's channel was the last one using gRPC's callback queue and went on that queue's thread.
TEST_F(KubeletFaultsTest, SilentKubeletScrapesStayPromptAndSigtermWithARegisterInFlight) {
  for (int run = 0; run < 4; ++run) {
    SilentSocket pod_resources(dir_ + "/pr/kubelet.sock");
    SilentSocket kubelet(dir_ + "/dp/kubelet.sock");
    ASSERT_TRUE(pod_resources.ok() && kubelet.ok());
    ASSERT_NO_FATAL_FAILURE(StartDevscope(/*plugin=*/true));
    // The plugin dialled kubelet.sock: its Register is in flight (the kubelet never answers).
    ASSERT_TRUE(WaitUntil([&] { return kubelet.accepted() > 0; }, absl::Seconds(10)))
        << devscope_->Stderr();
    EXPECT_LT(TimedGet("/metrics"), absl::Seconds(1));
    EXPECT_LT(TimedGet("/healthz"), absl::Seconds(1));
    EXPECT_EQ(Metric("devscope_pod_resources_up"), 0);
    ExpectCleanStopWithinASecond();
    EXPECT_THAT(devscope_->Stderr(), HasSubstr("device plugin stopped"));
  }
}

TEST_F(KubeletFaultsTest, SlowKubeletSigtermWithAListAndARegisterInFlight) {
  auto standin = PodResourcesStandin::Start(dir_ + "/pr/kubelet.sock");
  ASSERT_TRUE(standin.ok()) << standin.status();
  (*standin)->SetListDelay(absl::Hours(1));  // answers the handshake, never the List
  SilentSocket kubelet(dir_ + "/dp/kubelet.sock");
  ASSERT_NO_FATAL_FAILURE(StartDevscope(/*plugin=*/true));
  ASSERT_TRUE(WaitUntil([&] { return (*standin)->CallCount("List") > 0 && kubelet.accepted() > 0; },
                        absl::Seconds(10)));
  EXPECT_LT(TimedGet("/metrics"), absl::Seconds(1));
  EXPECT_LT(TimedGet("/healthz"), absl::Seconds(1));
  ExpectCleanStopWithinASecond();
}

// A kubelet restarted with other methods served (an upgrade, a feature gate switched): the
// method metrics follow within a few polls, both ways.
TEST_F(KubeletFaultsTest, RestartWithOtherMethodsIsFollowedWithinAFewPolls) {
  auto standin = PodResourcesStandin::Start(dir_ + "/pr/kubelet.sock");
  ASSERT_TRUE(standin.ok()) << standin.status();
  (*standin)->SetGetMode(MethodMode::kUnimplemented);
  (*standin)->SetAllocatableMode(MethodMode::kDisabled);
  ASSERT_NO_FATAL_FAILURE(StartDevscope(/*plugin=*/false));
  auto supported = [&](const char* method) {
    return Metric("devscope_pod_resources_method_supported", {{"method", method}});
  };
  ASSERT_TRUE(
      WaitUntil([&] { return supported("Get") == 0 && supported("GetAllocatableResources") == 0; },
                absl::Seconds(10)));
  for (const auto& [mode, want] :
       {std::pair{MethodMode::kServe, 1.0}, std::pair{MethodMode::kDisabled, 0.0},
        std::pair{MethodMode::kServe, 1.0}}) {
    (*standin)->SetGetMode(mode);
    (*standin)->SetAllocatableMode(mode);
    ASSERT_TRUE((*standin)->Restart().ok());
    const absl::Time restarted = absl::Now();
    ASSERT_TRUE(WaitUntil(
        // clang 14 cannot capture a structured binding: the lambda captures a copy.
        [&, want = want] {
          return supported("Get") == want && supported("GetAllocatableResources") == want;
        },
        absl::Seconds(10)));
    const absl::Duration took = absl::Now() - restarted;
    std::printf("restart -> method_supported %.0f: %s\n", want, absl::FormatDuration(took).c_str());
    EXPECT_LT(took, absl::Seconds(2));  // polls every 200 ms: a few polls, with room for load
  }
  ExpectCleanStopWithinASecond();
}

TEST_F(KubeletFaultsTest, PodResourcesDirectoryDeletedAndRecreated) {
  auto standin = PodResourcesStandin::Start(dir_ + "/pr/kubelet.sock");
  ASSERT_TRUE(standin.ok()) << standin.status();
  (*standin)->SetPods({MakePod("ml", "before", {MakeContainer("c")})});
  ASSERT_NO_FATAL_FAILURE(StartDevscope(/*plugin=*/false));
  ASSERT_TRUE(
      WaitUntil([&] { return Metric("devscope_pod_resources_pods") == 1; }, absl::Seconds(10)));
  (*standin)->Stop();
  RemoveTree(dir_ + "/pr");
  ASSERT_TRUE(
      WaitUntil([&] { return Metric("devscope_pod_resources_up") == 0; }, absl::Seconds(10)));
  ASSERT_EQ(mkdir((dir_ + "/pr").c_str(), 0755), 0);
  ASSERT_TRUE((*standin)->Restart().ok());
  (*standin)->SetPods(
      {MakePod("ml", "a", {MakeContainer("c")}), MakePod("ml", "b", {MakeContainer("c")})});
  // The failure backoff is capped at 5 s.
  EXPECT_TRUE(
      WaitUntil([&] { return Metric("devscope_pod_resources_pods") == 2; }, absl::Seconds(8)))
      << devscope_->Stderr();
  EXPECT_EQ(Metric("devscope_pod_resources_up"), 1);
  ExpectCleanStopWithinASecond();
}

TEST_F(KubeletFaultsTest, DevicePluginsDirectoryDeletedAndRecreated) {
  RegistrationStandin kubelet;
  ASSERT_TRUE(kubelet.Start(dir_ + "/dp").ok());
  ASSERT_NO_FATAL_FAILURE(StartDevscope(/*plugin=*/true));
  auto one_device = [](const std::vector<v1beta1::Device>& d) { return d.size() == 1; };
  ASSERT_TRUE(kubelet.WaitForDevices(kWidget, one_device, absl::Seconds(10)));
  kubelet.Stop();
  // devscope may put its socket back while the tree is being removed (it saw its socket go):
  // removed again until the directory is gone.
  ASSERT_TRUE(WaitUntil(
      [&] {
        RemoveTree(dir_ + "/dp");
        return !std::filesystem::exists(dir_ + "/dp");
      },
      absl::Seconds(5)));
  ASSERT_TRUE(WaitUntil([&] { return devscope_->Stderr().find("went away") != std::string::npos; },
                        absl::Seconds(5)))
      << devscope_->Stderr();
  absl::SleepFor(absl::Seconds(1));  // a kubelet takes a while to come back
  ASSERT_EQ(mkdir((dir_ + "/dp").c_str(), 0755), 0);
  const absl::Time back = absl::Now();
  ASSERT_TRUE(kubelet.Start(dir_ + "/dp").ok());
  auto registered_since = [&](absl::Time since) {
    for (const auto& r : kubelet.Registrations()) {
      if (r.accepted && r.time >= since) return true;
    }
    return false;
  };
  ASSERT_TRUE(WaitUntil([&] { return registered_since(back); }, absl::Seconds(10)))
      << devscope_->Stderr();
  std::printf("device-plugins directory recreated -> registered: %s\n",
              absl::FormatDuration(absl::Now() - back).c_str());
  EXPECT_TRUE(kubelet.WaitForDevices(kWidget, one_device, absl::Seconds(5)));
  EXPECT_TRUE(WaitUntil(
      [&] { return Metric("devscope_device_plugin_registered", {{"resource", kWidget}}) == 1; },
      absl::Seconds(5)));
  ExpectCleanStopWithinASecond();
}

// A full file system where the plugin sockets go (a tmpfs with no inode left): serving fails,
// is logged once and retried; the metrics stay served; once there is room again the plugin
// serves and registers.
TEST_F(KubeletFaultsTest, FullFileSystemWhereThePluginSocketsGo) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root (CI runs as root)";
  const std::string dp = dir_ + "/dp";
  ASSERT_EQ(mount("tmpfs", dp.c_str(), "tmpfs", 0, "size=64k,nr_inodes=16,mode=0755"), 0)
      << std::strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{dp};
  RegistrationStandin kubelet;
  ASSERT_TRUE(kubelet.Start(dp).ok());
  const std::string cdi = dp + "/cdi";  // the CDI specs on the same full file system
  ASSERT_EQ(mkdir(cdi.c_str(), 0755), 0);
  std::vector<std::string> fillers;
  for (int i = 0;; ++i) {
    const std::string path = absl::StrCat(dp, "/filler-", i);
    std::ofstream out(path);
    if (!out) break;
    fillers.push_back(path);
  }
  ASSERT_FALSE(fillers.empty());
  ASSERT_NO_FATAL_FAILURE(StartDevscope(/*plugin=*/true, {"--device-plugin.cdi-spec-dir=" + cdi}));
  ASSERT_TRUE(WaitUntil(
      [&] {
        return devscope_->Stderr().find("cannot serve the device plugin") != std::string::npos;
      },
      absl::Seconds(10)))
      << devscope_->Stderr();
  absl::SleepFor(absl::Seconds(2));  // retried every second, logged once
  const std::string log = devscope_->Stderr();
  const std::string logged = "cannot serve the device plugin; retrying";
  EXPECT_EQ(log.find(logged), log.rfind(logged)) << log;
  EXPECT_THAT(log, HasSubstr("No space left on device"));
  EXPECT_LT(TimedGet("/metrics"), absl::Seconds(1));
  EXPECT_TRUE(kubelet.Registrations().empty());
  const std::map<std::string, std::string> widget = {{"resource", kWidget}};
  EXPECT_EQ(Metric("devscope_device_plugin_cdi_spec_current", widget), 0);

  for (const std::string& path : fillers) unlink(path.c_str());
  const absl::Time freed = absl::Now();
  ASSERT_TRUE(kubelet.WaitForDevices(
      kWidget, [](const auto& d) { return d.size() == 1; }, absl::Seconds(10)))
      << devscope_->Stderr();
  std::printf("room again -> registered: %s\n", absl::FormatDuration(absl::Now() - freed).c_str());
  EXPECT_TRUE(WaitUntil(
      [&] { return Metric("devscope_device_plugin_cdi_spec_current", widget) == 1; },
      absl::Seconds(5)));
  EXPECT_TRUE(std::filesystem::exists(cdi + "/devscope-example.com-widget.json"))
      << devscope_->Stderr();
  ExpectCleanStopWithinASecond();
  kubelet.Stop();
}

}  // namespace
}  // namespace devscope
