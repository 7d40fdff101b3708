// The /metrics text as the renderer makes it and the HTTP server sends it: `stable`, the node and
// device view, the same object until a snapshot changes (so what is derived from it is made once
// per change), then `fresh`, the exporter's own metrics, made per scrape.
//
// The stable text is made of pieces (a family, or a family's series for a block of devices), each
// with a key that names it across renders. A piece whose bytes are the same as the previous text's
// piece of that key shares its deflate data, so after a change only the changed pieces are
// compressed again (exporter/gzip.h explains why pieces compressed apart make one gzip member).
#ifndef DEVSCOPE_EXPORTER_EXPOSITION_H_
#define DEVSCOPE_EXPORTER_EXPOSITION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "exporter/gzip.h"

namespace devscope {

// A piece's deflate data, made at most once by whichever text needs it first.
class DeflateCell {
 public:
  // The deflate data of `text`, which is this cell's piece (the same bytes whichever text asks).
  // `made` is set true when this call compressed it. Thread-safe.
  const DeflatedPiece& Get(absl::string_view text, bool* made);

 private:
  absl::once_flag once_;
  DeflatedPiece piece_;
};

class StableText {
 public:
  const std::string& text() const { return text_; }

  // The gzip header and the deflate data of the whole text, left open for GzipEnd: made on the
  // first call from the pieces' deflate data. Thread-safe.
  const GzipPrefix& Gzip() const;
  // How many bytes of text making Gzip() compressed: the pieces no earlier text had compressed.
  // Makes the gzip if it is not made yet.
  uint64_t bytes_compressed() const;
  // How many bytes of the text were copied from the text before it rather than rendered.
  uint64_t bytes_copied() const { return bytes_copied_; }
  size_t piece_count() const { return pieces_.size(); }

 private:
  friend class StableTextBuilder;
  struct Piece {
    uint64_t key;
    uint32_t offset;
    uint32_t size;
    std::shared_ptr<DeflateCell> deflate;
  };

  std::string text_;
  std::vector<Piece> pieces_;
  absl::flat_hash_map<uint64_t, uint32_t> index_;  // key -> position in pieces_
  uint64_t bytes_copied_ = 0;
  mutable absl::once_flag gzip_once_;
  mutable GzipPrefix gzip_;
  mutable uint64_t bytes_compressed_ = 0;
};

// Makes a StableText piece by piece: write a piece's bytes to buffer(), then EndPiece; or copy a
// piece whose inputs did not change from the previous text with CopyPiece.
class StableTextBuilder {
 public:
  // `previous`: the text made last (or null), where unchanged pieces are found. The new text's
  // buffer is reserved at about the previous text's size: one allocation, no regrowth. (A spare
  // buffer kept for the next text would save that allocation and cost a second copy of the text
  // in resident memory, 1.7 MB at 12k series.)
  explicit StableTextBuilder(std::shared_ptr<const StableText> previous);

  std::string& buffer() { return text_->text_; }
  // Bytes written since the last piece ended.
  size_t pending_bytes() const { return text_->text_.size() - piece_start_; }
  // The bytes written since the last piece ended form the piece `key` (keys are unique within a
  // text). When the previous text's piece `key` has the same bytes, its deflate data is shared.
  void EndPiece(uint64_t key);
  // Appends the previous text's piece `key` unchanged; false (nothing appended) when it has none.
  bool CopyPiece(uint64_t key);
  // Appends every piece of the previous text whose key, masked with `mask`, equals `prefix`, in
  // their order there: a whole section whose inputs did not change.
  void CopyPieces(uint64_t mask, uint64_t prefix);

  std::shared_ptr<const StableText> Finish();

 private:
  void AddPiece(uint64_t key, size_t offset, size_t size, std::shared_ptr<DeflateCell> deflate);

  std::shared_ptr<const StableText> previous_;
  std::shared_ptr<StableText> text_;
  size_t piece_start_ = 0;
};

// A text of one piece (tests, and texts made elsewhere).
std::shared_ptr<const StableText> MakeStableText(absl::string_view text);

struct Exposition {
  std::shared_ptr<const StableText> stable;
  std::string fresh;
};

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_EXPOSITION_H_
