#include "cmd/pod_command.h"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "kubelet/convert.h"
#include "kubelet/cpuset.h"
#include "kubelet/grpc_pod_resources_client.h"
#include "podresources/v1/api.pb.h"

namespace devscope {
namespace {

// An interactive command waits a little longer than a poll would.
constexpr absl::Duration kCallDeadline = absl::Seconds(10);

std::string FormatNuma(const NumaNodes& nodes) {
  if (nodes.empty()) return "-";
  return absl::StrJoin(nodes, ",");
}

std::string FormatBytes(uint64_t bytes) {
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  double value = static_cast<double>(bytes);
  int unit = -1;
  while (value >= 1024 && unit < 3) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", value);
  return absl::StrCat(bytes, " (", buf, kUnits[unit], ")");
}

using Row = std::vector<std::string>;

void AddMemoryRows(absl::string_view container, const std::vector<MemoryAssignment>& memory,
                   std::vector<Row>& rows) {
  for (const MemoryAssignment& m : memory) {
    rows.push_back({std::string(container), "memory", m.memory_type, FormatBytes(m.size_bytes),
                    FormatNuma(m.numa_nodes), ""});
  }
}

void PrintFailure(absl::string_view what, const absl::Status& status, absl::string_view socket,
                  std::ostream& err) {
  err << "devscope pod: " << what << " failed: " << absl::StatusCodeToString(status.code()) << ": "
      << status.message() << " (socket " << socket << ")\n";
}

}  // namespace

void PrintPodTable(const PodResources& pod, std::ostream& out) {
  std::vector<Row> rows;
  rows.push_back({"CONTAINER", "KIND", "RESOURCE", "ID", "NUMA", "DETAILS"});
  for (const ContainerResources& c : pod.containers) {
    const size_t before = rows.size();
    for (const DeviceAssignment& d : c.devices) {
      for (const std::string& id : d.device_ids) {
        rows.push_back({c.name, "device", d.resource, id, FormatNuma(d.numa_nodes), ""});
      }
    }
    if (!c.exclusive_cpus.empty()) {
      rows.push_back({c.name, "cpus", "cpu", FormatCpuSet(c.exclusive_cpus), "-",
                      absl::StrCat(c.exclusive_cpus.size(), " exclusive")});
    }
    AddMemoryRows(c.name, c.memory, rows);
    for (const ClaimDevice& d : c.claim_devices) {
      std::string details = absl::StrCat("claim=", d.claim_namespace, "/", d.claim_name);
      if (d.share_id.has_value()) absl::StrAppend(&details, " share=", *d.share_id);
      if (!d.cdi_devices.empty())
        absl::StrAppend(&details, " cdi=", absl::StrJoin(d.cdi_devices, ","));
      rows.push_back(
          {c.name, "dra", absl::StrCat(d.driver, "/", d.pool), d.device, "-", std::move(details)});
    }
    if (rows.size() == before)
      rows.push_back({c.name, "-", "-", "-", "-", "no devices, exclusive CPUs or pinned memory"});
  }
  if (!pod.pod_cpus.empty()) {
    rows.push_back({"(pod)", "cpus", "cpu", FormatCpuSet(pod.pod_cpus), "-",
                    absl::StrCat(pod.pod_cpus.size(), " exclusive")});
  }
  AddMemoryRows("(pod)", pod.pod_memory, rows);

  std::vector<size_t> width(rows.front().size(), 0);
  for (const Row& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  out << "pod " << pod.ns << "/" << pod.name << "\n";
  for (const Row& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
}

absl::StatusOr<PodRef> ParsePodRef(absl::string_view ns_slash_name) {
  const std::vector<absl::string_view> parts = absl::StrSplit(ns_slash_name, '/');
  if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pod: \"", ns_slash_name, "\" is not NAMESPACE/NAME"));
  }
  return PodRef{std::string(parts[0]), std::string(parts[1])};
}

int RunPodCommand(const PollerOptions& options, const PodRef& pod, std::ostream& out) {
  GrpcPodResourcesClient client(GrpcPodResourcesClient::Options{
      options.socket_path, options.max_message_size, kCallDeadline});
  return RunPodCommand(client, options.socket_path, pod, out, std::cerr);
}

int RunPodCommand(PodResourcesClient& client, absl::string_view socket, const PodRef& pod,
                  std::ostream& out, std::ostream& err) {
  const std::string& ns = pod.ns;
  const std::string& name = pod.name;
  v1::GetPodResourcesResponse response;
  const absl::Status get = client.Get(ns, name, &response);
  if (get.ok()) {
    PrintPodTable(ConvertPod(response.pod_resources()), out);
    return 0;
  }
  if (SupportFromStatus(PodResourcesMethod::kGet, get) != MethodSupport::kNotServed) {
    if (absl::StrContains(get.message(), "not found")) {
      err << "devscope pod: pod " << ns << "/" << name << " not found\n";
    } else {
      PrintFailure("Get", get, socket, err);
    }
    return 1;
  }

  // A kubelet without Get (before 1.27, or with the KubeletPodResourcesGet gate off): List.
  err << "devscope pod: the kubelet does not serve Get (" << absl::StatusCodeToString(get.code())
      << ": " << get.message() << "); using List\n";
  v1::ListPodResourcesResponse list;
  const absl::Status listed = client.List(&list);
  if (!listed.ok()) {
    PrintFailure("List", listed, socket, err);
    return 1;
  }
  for (const v1::PodResources& listed : list.pod_resources()) {
    if (listed.namespace_() == ns && listed.name() == name) {
      PrintPodTable(ConvertPod(listed), out);
      return 0;
    }
  }
  err << "devscope pod: pod " << ns << "/" << name << " not found\n";
  return 1;
}

}  // namespace devscope
