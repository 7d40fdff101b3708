// gzip for an exposition made of a large part that stays the same across scrapes (the node and
// device view, cached per snapshot) and a small part made per scrape (the exporter's own metrics).
// Prometheus always asks for gzip, so the large part is compressed once and each scrape compresses
// only the small part: the large part's deflate data ends in a full flush (byte-aligned, no final
// block, no back-references across it), a fresh deflate stream of the small part follows, and the
// trailer's CRC-32 is combined from the two parts' (zlib's crc32_combine). The result is one
// ordinary gzip member, not two concatenated ones, which some clients would stop reading after.
#ifndef DEVSCOPE_EXPORTER_GZIP_H_
#define DEVSCOPE_EXPORTER_GZIP_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace devscope {

// The gzip header and the deflate data of a text, left open for more.
struct GzipPrefix {
  std::string bytes;  // empty when compression failed
  uint32_t crc = 0;   // CRC-32 of the text
  uint64_t length = 0;
};

// Compresses `text` (zlib level 1: cheap, and exposition text compresses well at any level).
GzipPrefix GzipBegin(absl::string_view text);

// The deflate data of one piece of text made alone (no back-references outside it), ending in a
// full flush: pieces deflated apart can follow one another in one gzip member, so a text made of
// pieces that mostly stay the same is compressed one changed piece at a time.
struct DeflatedPiece {
  std::string bytes;
  uint32_t crc = 0;  // CRC-32 of the piece's text
  uint64_t length = 0;
  bool ok = false;  // false when compression failed
};
DeflatedPiece DeflatePiece(absl::string_view text);

// The gzip header alone: a prefix of no text, for AppendPiece.
GzipPrefix GzipHeader();
// Appends a piece's deflate data to `prefix` and accounts for its text in the CRC and length.
// A failed piece fails the prefix (its bytes become empty).
void AppendPiece(GzipPrefix& prefix, const DeflatedPiece& piece);

// What follows prefix.bytes to make the gzip of prefix text + `rest`: the deflate data of `rest`
// with the final block, and the trailer. Empty when compression failed.
std::string GzipEnd(const GzipPrefix& prefix, absl::string_view rest);

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_GZIP_H_
