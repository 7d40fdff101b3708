#include "deviceplugin/cdi_spec.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"

namespace devscope {
namespace {

using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;
using google::protobuf::util::MessageDifferencer;

// A CDI vendor or class name: a letter first, then letters, digits, '_', '-', '.', and a letter or
// digit last.
bool IsValidKindPart(absl::string_view name) {
  if (name.empty() || !absl::ascii_isalpha(name.front()) || !absl::ascii_isalnum(name.back())) {
    return false;
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

Value Str(absl::string_view s) {
  Value v;
  v.set_string_value(std::string(s));
  return v;
}

Value Number(double n) {
  Value v;
  v.set_number_value(n);
  return v;
}

Value& Field(Struct& s, const char* name) { return (*s.mutable_fields())[name]; }

ListValue& ListField(Struct& s, const char* name) { return *Field(s, name).mutable_list_value(); }

// The containerEdits of one device: what its Allocate answer would carry as device specs.
Struct ContainerEdits(const AllocateSpec& spec, const NodeNumbers& numbers) {
  Struct edits;
  for (const AllocateSpec::DeviceNode& node : spec.device_nodes) {
    Struct n;
    Field(n, "path") = Str(node.container_path.empty() ? node.host_path : node.container_path);
    Field(n, "hostPath") = Str(node.host_path);
    Field(n, "permissions") = Str(node.permissions.empty() ? "rw" : node.permissions);
    if (const std::optional<DeviceNumbers> found =
            numbers ? numbers(node.host_path) : std::nullopt) {
      Field(n, "type") = Str(std::string(1, found->type));
      Field(n, "major") = Number(found->major);
      Field(n, "minor") = Number(found->minor);
    }
    *ListField(edits, "deviceNodes").add_values()->mutable_struct_value() = std::move(n);
  }
  for (const auto& [key, value] : spec.envs) {
    *ListField(edits, "env").add_values() = Str(absl::StrCat(key, "=", value));
  }
  for (const AllocateSpec::Mount& mount : spec.mounts) {
    Struct m;
    Field(m, "hostPath") = Str(mount.host_path);
    Field(m, "containerPath") = Str(mount.container_path);
    ListValue& options = *Field(m, "options").mutable_list_value();
    *options.add_values() = Str("bind");
    *options.add_values() = Str(mount.read_only ? "ro" : "rw");
    *ListField(edits, "mounts").add_values()->mutable_struct_value() = std::move(m);
  }
  return edits;
}

std::string ErrnoText() { return std::strerror(errno); }

}  // namespace

std::optional<DeviceNumbers> StatDeviceNode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) {
    return std::nullopt;
  }
  return DeviceNumbers{S_ISCHR(st.st_mode) ? 'c' : 'b', major(st.st_rdev), minor(st.st_rdev)};
}

absl::Status ValidateCdiKind(absl::string_view resource) {
  const size_t slash = resource.find('/');
  if (slash == absl::string_view::npos ||
      resource.find('/', slash + 1) != absl::string_view::npos ||
      !IsValidKindPart(resource.substr(0, slash)) || !IsValidKindPart(resource.substr(slash + 1))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", resource,
        "\" is not a CDI kind (vendor/class, each starting with a letter, ending with a letter or "
        "digit, with letters, digits, '_', '-' and '.' between)"));
  }
  return absl::OkStatus();
}

bool IsValidCdiDeviceName(absl::string_view id) {
  if (id.empty() || !absl::ascii_isalnum(id.front()) || !absl::ascii_isalnum(id.back())) {
    return false;
  }
  for (char c : id) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-' && c != '.' && c != ':') return false;
  }
  return true;
}

std::string CdiDeviceName(absl::string_view resource, absl::string_view id) {
  return absl::StrCat(resource, "=", id);
}

namespace {

Struct SpecOf(const std::string& resource, const std::vector<PluginDevice>& devices,
              const NodeNumbers& numbers) {
  Struct spec;
  // 0.5.0 brought hostPath for device nodes and names starting with a digit (PCI addresses);
  // 0.6.0 allows a dot in the class, which older runtimes (podman 4.3) do not read.
  const absl::string_view kind_class = absl::string_view(resource).substr(resource.find('/') + 1);
  Field(spec, "cdiVersion") = Str(absl::StrContains(kind_class, '.') ? "0.6.0" : "0.5.0");
  Field(spec, "kind") = Str(resource);
  ListValue& list = ListField(spec, "devices");
  for (const PluginDevice& device : devices) {
    if (!IsValidCdiDeviceName(device.id)) continue;
    Struct d;
    Field(d, "name") = Str(device.id);
    *Field(d, "containerEdits").mutable_struct_value() = ContainerEdits(device.allocate, numbers);
    *list.add_values()->mutable_struct_value() = std::move(d);
  }
  return spec;
}

std::string Json(const Struct& spec) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  std::string json;
  // A Struct of strings, numbers and lists always prints.
  (void)google::protobuf::util::MessageToJsonString(spec, &json, options);
  return json;
}

}  // namespace

std::string RenderCdiSpec(const std::string& resource, const std::vector<PluginDevice>& devices,
                          const NodeNumbers& numbers) {
  return Json(SpecOf(resource, devices, numbers));
}

CdiSpecWriter::CdiSpecWriter(std::string dir, NodeNumbers numbers,
                             prometheus::Family<prometheus::Gauge>* current)
    : dir_(std::move(dir)), numbers_(std::move(numbers)), current_(current) {}

CdiSpecWriter::~CdiSpecWriter() { RemoveAll(); }

std::string CdiSpecWriter::PathOf(const std::string& resource) const {
  std::string name = resource;
  for (char& c : name) {
    if (c == '/') c = '-';
  }
  return absl::StrCat(dir_, "/devscope-", name, ".json");
}

absl::Status CdiSpecWriter::WriteFile(const std::string& path, const std::string& content) const {
  // A dot file without the .json suffix: runtimes watching the directory load *.json only.
  const std::string temporary = absl::StrCat(dir_, "/.", path.substr(dir_.size() + 1), ".tmp");
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return absl::UnavailableError(absl::StrCat("cannot create ", temporary, ": ", ErrnoText()));
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = ErrnoText();
      ::close(fd);
      ::unlink(temporary.c_str());
      return absl::UnavailableError(absl::StrCat("cannot write ", temporary, ": ", why));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string why = ErrnoText();
    ::unlink(temporary.c_str());
    return absl::UnavailableError(absl::StrCat("cannot write ", temporary, ": ", why));
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string why = ErrnoText();
    ::unlink(temporary.c_str());
    return absl::UnavailableError(
        absl::StrCat("cannot rename ", temporary, " to ", path, ": ", why));
  }
  return absl::OkStatus();
}

void CdiSpecWriter::SetCurrent(const std::string& resource, bool current) {
  if (current_ != nullptr) current_->Add({{"resource", resource}}).Set(current ? 1 : 0);
}

void CdiSpecWriter::Apply(std::map<std::string, std::vector<PluginDevice>>& by_resource) {
  for (auto& [resource, devices] : by_resource) {
    const std::set<std::string> named = Write(resource, devices);
    for (PluginDevice& device : devices) {
      device.cdi_name = named.contains(device.id) ? CdiDeviceName(resource, device.id) : "";
    }
  }
  std::vector<std::string> gone;
  for (const auto& [resource, written] : written_) {
    if (!by_resource.contains(resource)) gone.push_back(resource);
  }
  for (const std::string& resource : gone) Remove(resource);
}

std::set<std::string> CdiSpecWriter::Write(const std::string& resource,
                                           const std::vector<PluginDevice>& devices) {
  if (absl::Status kind = ValidateCdiKind(resource); !kind.ok()) {
    if (invalid_logged_.insert(resource).second) {
      Log().warn("no CDI spec resource={} reason=\"{}\"", resource, kind.message());
    }
    return {};
  }
  std::set<std::string> ids;
  for (const PluginDevice& device : devices) {
    if (IsValidCdiDeviceName(device.id)) {
      ids.insert(device.id);
    } else if (invalid_logged_.insert(CdiDeviceName(resource, device.id)).second) {
      Log().warn(
          "device left out of the CDI spec resource={} device={} reason=\"not a CDI device "
          "name\"",
          resource, device.id);
    }
  }
  const std::string path = PathOf(resource);
  Struct spec = SpecOf(resource, devices, numbers_);
  Written& written = written_[resource];
  struct stat st;
  // Compared as data: the JSON's key order is not stable from one rendering to the next.
  if (written.spec.has_value() && MessageDifferencer::Equals(*written.spec, spec) &&
      ::stat(path.c_str(), &st) == 0) {
    return written.ids;
  }
  absl::Status status = WriteFile(path, Json(spec));
  if (!status.ok()) {
    // Logged once per streak of failures; Allocate answers device specs meanwhile.
    if (!written.failing) {
      Log().warn("cannot write CDI spec resource={} error=\"{}\"", resource, status.message());
    }
    written = Written{.failing = true};
    SetCurrent(resource, false);
    return {};
  }
  if (written.failing) Log().info("CDI spec written again resource={} path={}", resource, path);
  written = Written{.spec = std::move(spec), .ids = ids, .failing = false};
  SetCurrent(resource, true);
  return ids;
}

void CdiSpecWriter::Remove(const std::string& resource) {
  auto it = written_.find(resource);
  if (it == written_.end()) return;
  // Also after a failed rewrite: an older spec may still be there.
  ::unlink(PathOf(resource).c_str());
  if (current_ != nullptr) current_->Remove(&current_->Add({{"resource", resource}}));
  written_.erase(it);
}

void CdiSpecWriter::RemoveAll() {
  while (!written_.empty()) Remove(written_.begin()->first);
}

void CdiSpecWriter::RemoveLeftovers() {
  for (const std::string& name : ListDirectory(dir_)) {
    if (absl::StartsWith(name, "devscope-") && absl::EndsWith(name, ".json")) {
      ::unlink(absl::StrCat(dir_, "/", name).c_str());
    }
  }
}

}  // namespace devscope
