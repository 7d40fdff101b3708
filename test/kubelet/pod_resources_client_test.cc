// The pod-resources client: the one "is this method served" rule (also against the kubelet
// stand-in over a real socket), the code names the metrics use, the fake, cpuset formatting.
#include "kubelet/pod_resources_client.h"

#include <memory>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "demo/standin_pod_resources.h"
#include "gtest/gtest.h"
#include "kubelet/cpuset.h"
#include "kubelet/fake_pod_resources_client.h"
#include "kubelet/grpc_pod_resources_client.h"
#include "test/support/temp_dir.h"

namespace devscope {
namespace {

constexpr PodResourcesMethod kList = PodResourcesMethod::kList;
constexpr PodResourcesMethod kAllocatable = PodResourcesMethod::kGetAllocatableResources;
constexpr PodResourcesMethod kGet = PodResourcesMethod::kGet;

TEST(MethodSupportTest, OkIsServedAndUnimplementedIsNotForEveryMethod) {
  for (PodResourcesMethod method : {kList, kAllocatable, kGet}) {
    EXPECT_EQ(SupportFromStatus(method, absl::OkStatus()), MethodSupport::kServed);
    EXPECT_EQ(SupportFromStatus(method, absl::UnimplementedError("unknown method")),
              MethodSupport::kNotServed);
    // Even a passing failure that mentions "not found" says nothing.
    for (const absl::Status& passing :
         {absl::UnavailableError("connection refused"), absl::DeadlineExceededError("slow"),
          absl::CancelledError("stopping"), absl::ResourceExhaustedError("rejected by rate limit"),
          absl::UnavailableError("socket not found")}) {
      EXPECT_EQ(SupportFromStatus(method, passing), MethodSupport::kUnknown)
          << MethodName(method) << " " << passing;
    }
  }
}

TEST(MethodSupportTest, TheGateOffErrorsAndGetsNotFound) {
  const absl::Status get_disabled = absl::UnknownError("PodResources API Get method disabled");
  const absl::Status pod_not_found = absl::UnknownError("pod x in namespace y not found");
  const absl::Status allocatable_disabled =
      absl::UnknownError("Pod Resources API GetAllocatableResources disabled");
  EXPECT_EQ(SupportFromStatus(kGet, get_disabled), MethodSupport::kNotServed);
  EXPECT_EQ(SupportFromStatus(kGet, pod_not_found), MethodSupport::kServed);
  EXPECT_EQ(SupportFromStatus(kGet, absl::InternalError("garbled")), MethodSupport::kNotServed);
  EXPECT_EQ(SupportFromStatus(kAllocatable, allocatable_disabled), MethodSupport::kNotServed);
  EXPECT_EQ(SupportFromStatus(kAllocatable, absl::FailedPreconditionError("off")),
            MethodSupport::kNotServed);
  EXPECT_EQ(SupportFromStatus(kAllocatable, absl::InternalError("garbled")),
            MethodSupport::kUnknown);
  // List is never switched off: only Unimplemented says it is not served.
  EXPECT_EQ(SupportFromStatus(kList, absl::UnknownError("boom")), MethodSupport::kUnknown);
  EXPECT_EQ(SupportFromStatus(kList, absl::InternalError("garbled")), MethodSupport::kUnknown);
}

TEST(MethodSupportTest, MethodNames) {
  EXPECT_EQ(MethodName(kList), "List");
  EXPECT_EQ(MethodName(kAllocatable), "GetAllocatableResources");
  EXPECT_EQ(MethodName(kGet), "Get");
}

// The `code` label of devscope_pod_resources_requests_total: gRPC's canonical names, unchanged.
TEST(ReplyStatusTest, CodeNamesAreTheCanonicalOnes) {
  const char* const names[] = {"OK",
                               "CANCELLED",
                               "UNKNOWN",
                               "INVALID_ARGUMENT",
                               "DEADLINE_EXCEEDED",
                               "NOT_FOUND",
                               "ALREADY_EXISTS",
                               "PERMISSION_DENIED",
                               "RESOURCE_EXHAUSTED",
                               "FAILED_PRECONDITION",
                               "ABORTED",
                               "OUT_OF_RANGE",
                               "UNIMPLEMENTED",
                               "INTERNAL",
                               "UNAVAILABLE",
                               "DATA_LOSS",
                               "UNAUTHENTICATED"};
  for (int code = 0; code <= 16; ++code) {
    const absl::Status status =
        ReplyStatus(grpc::Status(static_cast<grpc::StatusCode>(code), code == 0 ? "" : "x"));
    EXPECT_EQ(absl::StatusCodeToString(status.code()), names[code]) << code;
  }
  // A code gRPC does not define; 20 is within grpc::StatusCode's range of values (-32..31), so
  // the cast is defined (UBSan refused 42).
  EXPECT_EQ(ReplyStatus(grpc::Status(static_cast<grpc::StatusCode>(20), "odd")).code(),
            absl::StatusCode::kUnknown);
}

TEST(ReplyStatusTest, AGarbledReplyIsInternalNotUnimplemented) {
  const absl::Status garbled = ReplyStatus(
      grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "No message returned for unary request"));
  EXPECT_EQ(garbled.code(), absl::StatusCode::kInternal);
  const absl::Status missing = ReplyStatus(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "nope"));
  EXPECT_EQ(missing.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(missing.message(), "nope");
}

class GrpcClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto standin = PodResourcesStandin::Start(dir_.Path("kubelet.sock"));
    ASSERT_TRUE(standin.ok()) << standin.status();
    standin_ = *std::move(standin);
    standin_->SetPods({MakePod("ml", "trainer", {MakeContainer("main")})});
    client_ = std::make_unique<GrpcPodResourcesClient>(
        GrpcPodResourcesClient::Options{dir_.Path("kubelet.sock"), 4 << 20, absl::Seconds(5)});
  }

  TempDir dir_;
  std::unique_ptr<PodResourcesStandin> standin_;
  std::unique_ptr<GrpcPodResourcesClient> client_;
};

TEST_F(GrpcClientTest, TheRuleReadsTheKubeletsAnswers) {
  v1::GetPodResourcesResponse got;
  ASSERT_TRUE(client_->Get("ml", "trainer", &got).ok());
  EXPECT_EQ(got.pod_resources().name(), "trainer");
  EXPECT_EQ(SupportFromStatus(kGet, client_->Get("ml", "nope", &got)), MethodSupport::kServed);
  for (MethodMode mode : {MethodMode::kUnimplemented, MethodMode::kDisabled}) {
    standin_->SetGetMode(mode);
    standin_->SetAllocatableMode(mode);
    EXPECT_EQ(SupportFromStatus(kGet, client_->Get("ml", "trainer", &got)),
              MethodSupport::kNotServed);
    v1::AllocatableResourcesResponse allocatable;
    EXPECT_EQ(SupportFromStatus(kAllocatable, client_->GetAllocatableResources(&allocatable)),
              MethodSupport::kNotServed);
  }
  v1::ListPodResourcesResponse list;
  EXPECT_TRUE(client_->List(&list).ok());
  EXPECT_EQ(list.pod_resources_size(), 1);
}

TEST_F(GrpcClientTest, ShutdownCancelsACallInFlightAndLaterCalls) {
  standin_->SetListDelay(absl::Seconds(4));
  absl::Status in_flight;
  std::thread call([&] {
    v1::ListPodResourcesResponse list;
    in_flight = client_->List(&list);
  });
  absl::SleepFor(absl::Milliseconds(300));
  const absl::Time start = absl::Now();
  client_->Shutdown();
  call.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(in_flight.code(), absl::StatusCode::kCancelled);
  v1::ListPodResourcesResponse list;
  EXPECT_EQ(client_->List(&list).code(), absl::StatusCode::kCancelled);
}

TEST_F(GrpcClientTest, ReconnectFindsARestartedKubeletAtOnce) {
  v1::ListPodResourcesResponse list;
  ASSERT_TRUE(client_->List(&list).ok());
  standin_->Stop();
  EXPECT_EQ(client_->List(&list).code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(standin_->Restart().ok());
  client_->Reconnect();
  EXPECT_TRUE(client_->List(&list).ok());
}

TEST(FakeClientTest, AnswersAsTheKubeletDoes) {
  FakePodResourcesClient fake;
  fake.SetPods({MakePod("ml", "trainer", {MakeContainer("main")})});
  v1::GetPodResourcesResponse got;
  EXPECT_TRUE(fake.Get("ml", "trainer", &got).ok());
  const absl::Status missing = fake.Get("ml", "nope", &got);
  EXPECT_EQ(missing.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(missing.message(), "pod nope in namespace ml not found");
  fake.SetStatus(kGet, absl::UnimplementedError("no Get"));
  EXPECT_EQ(fake.Get("ml", "trainer", &got).code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(fake.Calls(kGet), 3);
  fake.Shutdown();
  v1::ListPodResourcesResponse list;
  EXPECT_EQ(fake.List(&list).code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(fake.Calls(kList), 0);
}

TEST(FormatCpuSetTest, MergesRanges) {
  EXPECT_EQ(FormatCpuSet({8, 0, 1, 2, 3}), "0-3,8");
  EXPECT_EQ(FormatCpuSet({5}), "5");
  EXPECT_EQ(FormatCpuSet({}), "");
  EXPECT_EQ(FormatCpuSet({1, 3, 4, 6, 7, 8}), "1,3-4,6-8");
  EXPECT_EQ(FormatCpuSet({3, 3, 2}), "2-3");
}

}  // namespace
}  // namespace devscope
