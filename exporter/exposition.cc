#include "exporter/exposition.h"

#include <utility>

namespace devscope {

const DeflatedPiece& DeflateCell::Get(absl::string_view text, bool* made) {
  absl::call_once(once_, [&] {
    piece_ = DeflatePiece(text);
    *made = true;
  });
  return piece_;
}

const GzipPrefix& StableText::Gzip() const {
  absl::call_once(gzip_once_, [this] {
    size_t size = 0;
    for (const Piece& piece : pieces_) {
      bool made = false;
      const DeflatedPiece& deflated =
          piece.deflate->Get(absl::string_view(text_).substr(piece.offset, piece.size), &made);
      if (made) bytes_compressed_ += piece.size;
      size += deflated.bytes.size();
    }
    gzip_ = GzipHeader();
    gzip_.bytes.reserve(gzip_.bytes.size() + size);
    for (const Piece& piece : pieces_) {
      bool made = false;
      AppendPiece(gzip_, piece.deflate->Get(
                             absl::string_view(text_).substr(piece.offset, piece.size), &made));
    }
  });
  return gzip_;
}

uint64_t StableText::bytes_compressed() const {
  Gzip();  // bytes_compressed_ is written once, inside Gzip()'s call_once
  return bytes_compressed_;
}

StableTextBuilder::StableTextBuilder(std::shared_ptr<const StableText> previous)
    : previous_(std::move(previous)), text_(std::make_shared<StableText>()) {
  if (previous_ != nullptr) {
    const size_t size = previous_->text_.size();
    text_->text_.reserve(size + size / 16 + 4096);
    text_->pieces_.reserve(previous_->pieces_.size());
  }
}

void StableTextBuilder::AddPiece(uint64_t key, size_t offset, size_t size,
                                 std::shared_ptr<DeflateCell> deflate) {
  text_->index_.emplace(key, static_cast<uint32_t>(text_->pieces_.size()));
  text_->pieces_.push_back(StableText::Piece{key, static_cast<uint32_t>(offset),
                                             static_cast<uint32_t>(size), std::move(deflate)});
  piece_start_ = text_->text_.size();
}

void StableTextBuilder::EndPiece(uint64_t key) {
  const std::string& text = text_->text_;
  const size_t size = text.size() - piece_start_;
  std::shared_ptr<DeflateCell> deflate;
  if (previous_ != nullptr) {
    auto it = previous_->index_.find(key);
    if (it != previous_->index_.end()) {
      const StableText::Piece& old = previous_->pieces_[it->second];
      if (old.size == size && absl::string_view(previous_->text_).substr(old.offset, old.size) ==
                                  absl::string_view(text).substr(piece_start_, size)) {
        deflate = old.deflate;
      }
    }
  }
  if (deflate == nullptr) deflate = std::make_shared<DeflateCell>();
  AddPiece(key, piece_start_, size, std::move(deflate));
}

bool StableTextBuilder::CopyPiece(uint64_t key) {
  if (previous_ == nullptr) return false;
  auto it = previous_->index_.find(key);
  if (it == previous_->index_.end()) return false;
  const StableText::Piece& old = previous_->pieces_[it->second];
  const size_t offset = text_->text_.size();
  text_->text_.append(previous_->text_, old.offset, old.size);
  text_->bytes_copied_ += old.size;
  AddPiece(key, offset, old.size, old.deflate);
  return true;
}

void StableTextBuilder::CopyPieces(uint64_t mask, uint64_t prefix) {
  if (previous_ == nullptr) return;
  for (const StableText::Piece& old : previous_->pieces_) {
    if ((old.key & mask) != prefix) continue;
    const size_t offset = text_->text_.size();
    text_->text_.append(previous_->text_, old.offset, old.size);
    text_->bytes_copied_ += old.size;
    AddPiece(old.key, offset, old.size, old.deflate);
  }
}

std::shared_ptr<const StableText> StableTextBuilder::Finish() {
  std::string& text = text_->text_;
  // The first text, made without a size to go by, grew by doubling: keep only what it holds.
  if (text.capacity() > text.size() + text.size() / 8 + (64 << 10)) text.shrink_to_fit();
  return std::move(text_);
}

std::shared_ptr<const StableText> MakeStableText(absl::string_view text) {
  StableTextBuilder builder(nullptr);
  builder.buffer().append(text.data(), text.size());
  builder.EndPiece(0);
  return builder.Finish();
}

}  // namespace devscope
