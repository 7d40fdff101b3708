#include "deviceplugin/preferred_allocation.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "absl/container/flat_hash_set.h"

namespace devscope {
namespace {

// The group key for devices without a NUMA node: sorts after every real node.
constexpr int64_t kNoNode = std::numeric_limits<int64_t>::max();

struct Group {
  int64_t node = kNoNode;
  std::vector<std::string> ids;  // free candidates, natural order
  size_t taken = 0;
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Pack prefers the node with fewer free devices, spread the one with more; ties go to the lower
// node (devices without a node last).
auto Preferred(bool pack) {
  return [pack](const Group* a, const Group* b) {
    if (a->ids.size() != b->ids.size()) {
      return pack ? a->ids.size() < b->ids.size() : a->ids.size() > b->ids.size();
    }
    return a->node < b->node;
  };
}

// The free candidates (neither chosen nor repeated) by NUMA node, each group in natural order.
std::map<int64_t, Group> GroupByNode(const std::vector<std::string>& available,
                                     const absl::flat_hash_set<std::string>& chosen,
                                     const NumaLookup& numa_of) {
  std::map<int64_t, Group> by_node;
  absl::flat_hash_set<std::string> seen;
  for (const std::string& id : available) {
    if (chosen.contains(id) || !seen.insert(id).second) continue;
    const int64_t node = numa_of(id).value_or(kNoNode);
    Group& group = by_node[node];
    group.node = node;
    group.ids.push_back(id);
  }
  for (auto& [node, group] : by_node) std::sort(group.ids.begin(), group.ids.end(), NaturalLess);
  return by_node;
}

// The devices chosen so far, and how many more are needed.
struct Taker {
  // Pack fills each group in turn; spread takes one from each in turn.
  void Take(const std::vector<Group*>& groups, bool pack) {
    if (pack) {
      for (Group* group : groups) {
        while (need > 0 && group->taken < group->ids.size()) TakeOne(*group);
      }
      return;
    }
    bool progress = true;
    while (need > 0 && progress) {
      progress = false;
      for (Group* group : groups) {
        if (need > 0 && group->taken < group->ids.size()) {
          TakeOne(*group);
          progress = true;
        }
      }
    }
  }
  void TakeOne(Group& group) {
    result.push_back(group.ids[group.taken++]);
    --need;
  }

  std::vector<std::string> result;
  size_t need = 0;
};

// The nodes besides the occupied ones to take `need` devices from: k = the fewest largest nodes
// that hold them. Pack: the k-1 largest, then the best fit for what remains (the fullest node that
// still fits); spread: those k, in spread's order.
std::vector<Group*> PickFurtherNodes(std::vector<Group*> by_size, size_t need, bool pack) {
  std::sort(by_size.begin(), by_size.end(), [](const Group* a, const Group* b) {
    if (a->ids.size() != b->ids.size()) return a->ids.size() > b->ids.size();
    return a->node < b->node;
  });
  size_t k = 0, sum = 0;
  while (k < by_size.size() && sum < need) sum += by_size[k++]->ids.size();
  std::vector<Group*> picked;
  if (!pack) {
    picked.assign(by_size.begin(), by_size.begin() + k);
    std::sort(picked.begin(), picked.end(), Preferred(pack));
    return picked;
  }
  size_t remaining = need;
  for (size_t i = 0; i + 1 < k; ++i) {
    picked.push_back(by_size[i]);
    remaining -= std::min(remaining, by_size[i]->ids.size());
  }
  const auto preferred = Preferred(pack);
  Group* last = nullptr;
  for (size_t i = k == 0 ? 0 : k - 1; i < by_size.size(); ++i) {
    Group* candidate = by_size[i];
    if (candidate->ids.size() < remaining) continue;
    if (last == nullptr || preferred(candidate, last)) last = candidate;
  }
  if (last == nullptr && k > 0) last = by_size[k - 1];  // too few devices overall: take all
  if (last != nullptr) picked.push_back(last);
  return picked;
}

}  // namespace

bool NaturalLess(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (IsDigit(a[i]) && IsDigit(b[j])) {
      size_t i_end = i, j_end = j;
      while (i_end < a.size() && IsDigit(a[i_end])) ++i_end;
      while (j_end < b.size() && IsDigit(b[j_end])) ++j_end;
      // Compare numbers without converting: strip leading zeros, then length, then digits.
      size_t i_nz = i, j_nz = j;
      while (i_nz + 1 < i_end && a[i_nz] == '0') ++i_nz;
      while (j_nz + 1 < j_end && b[j_nz] == '0') ++j_nz;
      size_t i_len = i_end - i_nz, j_len = j_end - j_nz;
      if (i_len != j_len) return i_len < j_len;
      int cmp = a.compare(i_nz, i_len, b, j_nz, j_len);
      if (cmp != 0) return cmp < 0;
      if ((i_end - i) != (j_end - j)) return (i_end - i) < (j_end - j);
      i = i_end;
      j = j_end;
      continue;
    }
    if (a[i] != b[j]) return a[i] < b[j];
    ++i;
    ++j;
  }
  return (a.size() - i) < (b.size() - j);
}

std::vector<std::string> PreferredAllocation(const std::vector<std::string>& available,
                                             const std::vector<std::string>& must_include,
                                             int allocation_size, const NumaLookup& numa_of,
                                             AllocationPolicy policy) {
  Taker taker;
  absl::flat_hash_set<std::string> chosen;
  std::set<int64_t> used_nodes;
  for (const std::string& id : must_include) {
    if (!chosen.insert(id).second) continue;
    taker.result.push_back(id);
    used_nodes.insert(numa_of(id).value_or(kNoNode));
  }
  const size_t size = allocation_size < 0 ? 0 : static_cast<size_t>(allocation_size);
  if (taker.result.size() >= size) return taker.result;
  taker.need = size - taker.result.size();
  std::map<int64_t, Group> by_node = GroupByNode(available, chosen, numa_of);
  const bool pack = policy == AllocationPolicy::kPack;

  // 1. The nodes the must-include devices already occupy cost no further node.
  std::vector<Group*> occupied, others;
  for (auto& [node, group] : by_node) {
    (used_nodes.count(node) ? occupied : others).push_back(&group);
  }
  std::sort(occupied.begin(), occupied.end(), Preferred(pack));
  taker.Take(occupied, pack);
  if (taker.need == 0) return taker.result;

  // 2. As few further nodes as possible.
  std::vector<Group*> picked = PickFurtherNodes(std::move(others), taker.need, pack);
  taker.Take(picked, pack);
  return taker.result;
}

}  // namespace devscope
