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
  std::vector<std::string> result;
  absl::flat_hash_set<std::string> chosen;
  std::set<int64_t> used_nodes;
  for (const std::string& id : must_include) {
    if (!chosen.insert(id).second) continue;
    result.push_back(id);
    used_nodes.insert(numa_of(id).value_or(kNoNode));
  }
  size_t size = allocation_size < 0 ? 0 : static_cast<size_t>(allocation_size);
  if (result.size() >= size) return result;
  size_t need = size - result.size();

  std::map<int64_t, Group> by_node;
  absl::flat_hash_set<std::string> seen;
  for (const std::string& id : available) {
    if (chosen.contains(id) || !seen.insert(id).second) continue;
    int64_t node = numa_of(id).value_or(kNoNode);
    Group& group = by_node[node];
    group.node = node;
    group.ids.push_back(id);
  }
  for (auto& [node, group] : by_node) std::sort(group.ids.begin(), group.ids.end(), NaturalLess);

  const bool pack = policy == AllocationPolicy::kPack;
  // Pack prefers the node with fewer free devices, spread the one with more; ties go to the lower
  // node (devices without a node last).
  auto preferred = [pack](const Group* a, const Group* b) {
    if (a->ids.size() != b->ids.size()) {
      return pack ? a->ids.size() < b->ids.size() : a->ids.size() > b->ids.size();
    }
    return a->node < b->node;
  };
  auto take_in_order = [&](std::vector<Group*>& groups) {
    for (Group* group : groups) {
      while (need > 0 && group->taken < group->ids.size()) {
        result.push_back(group->ids[group->taken++]);
        --need;
      }
    }
  };
  auto take_round_robin = [&](std::vector<Group*>& groups) {
    bool progress = true;
    while (need > 0 && progress) {
      progress = false;
      for (Group* group : groups) {
        if (need > 0 && group->taken < group->ids.size()) {
          result.push_back(group->ids[group->taken++]);
          --need;
          progress = true;
        }
      }
    }
  };

  // 1. The nodes the must-include devices already occupy cost no further node.
  std::vector<Group*> occupied, others;
  for (auto& [node, group] : by_node) {
    (used_nodes.count(node) ? occupied : others).push_back(&group);
  }
  std::sort(occupied.begin(), occupied.end(), preferred);
  if (pack) {
    take_in_order(occupied);
  } else {
    take_round_robin(occupied);
  }
  if (need == 0) return result;

  // 2. As few further nodes as possible: k = the fewest largest nodes that hold `need`.
  std::vector<Group*> by_size = others;
  std::sort(by_size.begin(), by_size.end(), [](const Group* a, const Group* b) {
    if (a->ids.size() != b->ids.size()) return a->ids.size() > b->ids.size();
    return a->node < b->node;
  });
  size_t k = 0, sum = 0;
  while (k < by_size.size() && sum < need) sum += by_size[k++]->ids.size();

  std::vector<Group*> picked;
  if (pack) {
    // The k-1 largest, then the best fit for what remains (the fullest node that still fits).
    size_t remaining = need;
    for (size_t i = 0; i + 1 < k; ++i) {
      picked.push_back(by_size[i]);
      remaining -= std::min(remaining, by_size[i]->ids.size());
    }
    Group* last = nullptr;
    for (size_t i = k == 0 ? 0 : k - 1; i < by_size.size(); ++i) {
      Group* candidate = by_size[i];
      if (candidate->ids.size() < remaining) continue;
      if (last == nullptr || preferred(candidate, last)) last = candidate;
    }
    if (last == nullptr && k > 0) last = by_size[k - 1];  // too few devices overall: take all
    if (last != nullptr) picked.push_back(last);
    take_in_order(picked);
  } else {
    picked.assign(by_size.begin(), by_size.begin() + k);
    std::sort(picked.begin(), picked.end(), preferred);
    take_round_robin(picked);
  }
  return result;
}

}  // namespace devscope
