#include "exporter/gzip.h"

#include <zlib.h>

namespace devscope {
namespace {

constexpr int kLevel = 1;

// Raw deflate (no zlib or gzip wrapper) of `data` into `out`, ending with `flush`: Z_FULL_FLUSH
// leaves the stream open at a byte boundary, Z_FINISH closes it. False on a zlib error.
bool Deflate(absl::string_view data, int flush, std::string& out) {
  z_stream stream{};
  if (deflateInit2(&stream, kLevel, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
  const size_t start = out.size();
  // deflateBound covers the data; a flush adds a few bytes, so leave room and grow if needed.
  out.resize(start + deflateBound(&stream, data.size()) + 64);
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  int rc = Z_OK;
  while (true) {
    stream.next_out = reinterpret_cast<Bytef*>(out.data() + start + stream.total_out);
    stream.avail_out = static_cast<uInt>(out.size() - start - stream.total_out);
    rc = deflate(&stream, flush);
    const bool done = flush == Z_FINISH ? rc == Z_STREAM_END : stream.avail_out != 0;
    if (done || (rc != Z_OK && rc != Z_BUF_ERROR)) break;
    out.resize(out.size() * 2);
  }
  // Z_BUF_ERROR after a flush only says a repeated call had nothing left to write.
  const bool ok = flush == Z_FINISH ? rc == Z_STREAM_END : (rc == Z_OK || rc == Z_BUF_ERROR);
  out.resize(start + stream.total_out);
  deflateEnd(&stream);
  return ok;
}

void AppendLittleEndian32(uint32_t value, std::string& out) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint32_t Crc32(absl::string_view text) {
  return static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(text.data()), static_cast<uInt>(text.size())));
}

}  // namespace

GzipPrefix GzipHeader() {
  GzipPrefix prefix;
  // ID1 ID2, CM = deflate, no flags, no modification time, XFL 4 (fastest), OS 3 (Unix).
  prefix.bytes.assign("\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\x03", 10);
  return prefix;
}

GzipPrefix GzipBegin(absl::string_view text) {
  GzipPrefix prefix = GzipHeader();
  if (!Deflate(text, Z_FULL_FLUSH, prefix.bytes)) return GzipPrefix{};
  prefix.crc = Crc32(text);
  prefix.length = text.size();
  return prefix;
}

DeflatedPiece DeflatePiece(absl::string_view text) {
  DeflatedPiece piece;
  piece.ok = Deflate(text, Z_FULL_FLUSH, piece.bytes);
  if (!piece.ok) piece.bytes.clear();
  // Deflate sized the buffer for the worst case (the text's size and more); the piece is kept for
  // as long as it is unchanged, so it keeps only what it holds.
  piece.bytes.shrink_to_fit();
  piece.crc = Crc32(text);
  piece.length = text.size();
  return piece;
}

void AppendPiece(GzipPrefix& prefix, const DeflatedPiece& piece) {
  if (prefix.bytes.empty()) return;  // already failed
  if (!piece.ok) {
    prefix = GzipPrefix{};
    return;
  }
  prefix.bytes.append(piece.bytes);
  prefix.crc = static_cast<uint32_t>(
      crc32_combine(prefix.crc, piece.crc, static_cast<z_off_t>(piece.length)));
  prefix.length += piece.length;
}

std::string GzipEnd(const GzipPrefix& prefix, absl::string_view rest) {
  if (prefix.bytes.empty()) return "";
  std::string out;
  if (!Deflate(rest, Z_FINISH, out)) return "";
  AppendLittleEndian32(static_cast<uint32_t>(crc32_combine(prefix.crc, Crc32(rest),
                                                           static_cast<z_off_t>(rest.size()))),
                       out);
  AppendLittleEndian32(static_cast<uint32_t>(prefix.length + rest.size()), out);  // mod 2^32
  return out;
}

}  // namespace devscope
