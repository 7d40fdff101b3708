// A writer for the Prometheus text exposition format (version 0.0.4) that appends straight to a
// caller's buffer: no metric objects, no streams, and no allocation once the buffer and the
// duplicate set have grown to their working size. Rendering thousands of series costs about what
// writing their bytes costs.
//
// What it guarantees, for any bytes it is given as values: label values and help texts are
// escaped (\\, \", \n) and made valid UTF-8 (a bad sequence becomes U+FFFD, which Prometheus
// would otherwise reject the whole scrape for); values are written so that they parse back to the
// same double (+Inf, -Inf, NaN; integers as integers); HELP and TYPE come once per family, before
// its first series, and not at all for a family with no series; a series whose name and labels
// repeat one already written since the last Family() is dropped (Prometheus rejects a scrape
// with duplicate series). Names are the caller's: metric and label names must pass
// IsValidMetricName and IsValidLabelName (devscope's own names are constants; names from
// collectors are checked by the renderer once per family).
#ifndef DEVSCOPE_EXPORTER_EXPOSITION_WRITER_H_
#define DEVSCOPE_EXPORTER_EXPOSITION_WRITER_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"

namespace devscope {

enum class FamilyType { kGauge, kCounter };

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidMetricName(absl::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved for Prometheus' own labels).
bool IsValidLabelName(absl::string_view name);

// Appends `name="value"` (value escaped), preceded by a comma unless `out` is empty: for label
// sets rendered once and written into many series with ExpositionWriter::Labels.
void AppendLabel(std::string& out, absl::string_view name, absl::string_view value);

// Appends a sample value as the text format writes it.
void AppendValue(std::string& out, double value);

class ExpositionWriter {
 public:
  // Appends to `out`, which must outlive the writer; nothing is written until a series is.
  explicit ExpositionWriter(std::string& out);
  ExpositionWriter(const ExpositionWriter&) = delete;
  ExpositionWriter& operator=(const ExpositionWriter&) = delete;

  std::string& buffer() { return out_; }

  // Starts a family: its HELP and TYPE lines are written before its first series. The views
  // must stay valid until then. Also starts a new scope for duplicate detection.
  void Family(absl::string_view name, absl::string_view help, FamilyType type);
  // Writes HELP and TYPE now, whether series follow or not.
  void Header(absl::string_view name, absl::string_view help, FamilyType type);
  // Starts a new scope for duplicate detection without a new family: for a caller that knows
  // series before this point cannot repeat after it (another device).
  void ForgetSeries();

  // One series: Begin, any number of Label/Labels, End. Labels come out in the order given.
  void Begin(absl::string_view metric_name);
  void Label(absl::string_view name, absl::string_view value);
  void Label(absl::string_view name, int64_t value);
  // Label text made by AppendLabel: `a="x",b="y"` (empty: nothing).
  void Labels(absl::string_view rendered);
  // Ends the series with its value. False when it repeated a series of this scope and was
  // dropped (nothing of it stays in the buffer).
  bool End(double value);

 private:
  // A written series' name and labels, by position in out_ (positions survive reallocation).
  struct SeriesKey {
    uint32_t offset;
    uint32_t size;
  };
  struct KeyHash {
    using is_transparent = void;
    const std::string* text;
    size_t operator()(const SeriesKey& key) const;
  };
  struct KeyEq {
    using is_transparent = void;
    const std::string* text;
    bool operator()(const SeriesKey& a, const SeriesKey& b) const;
  };

  void WritePendingHeader();
  // Whether the series at `key` was written before in this scope; remembers it when not.
  bool Seen(SeriesKey key);

  std::string& out_;
  absl::string_view pending_name_;
  absl::string_view pending_help_;
  FamilyType pending_type_ = FamilyType::kGauge;
  bool header_pending_ = false;
  size_t series_start_ = 0;  // where the series being written began
  bool has_labels_ = false;  // the series being written has a label already
  // The scope's series: the first few compared directly (most scopes of the device view hold one
  // series: one device's sample for one holder), then hashed.
  static constexpr size_t kFewSeries = 8;
  SeriesKey few_[kFewSeries];
  size_t few_count_ = 0;
  absl::flat_hash_set<SeriesKey, KeyHash, KeyEq> seen_;
};

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_EXPOSITION_WRITER_H_
