// Compression of memory on its way between nodes (pre-copied pages and
// image chunks): none, LZ4 or zstd, chosen by what moves bytes fastest
// over this link now. Sending and compressing overlap (the engine thread
// or the loop compresses the next piece while the socket drains the last),
// so a codec costs, per raw byte, max(1 / its compression speed, its ratio
// / the link's speed); sending raw costs 1 / the link's speed. A fast link
// (loopback, 10 GbE) takes pages raw; a 1 GbE link takes LZ4 for
// compressible memory; random data goes raw everywhere.
//
// CodecChooser is pure (the caller measures and passes the figures in);
// Compress / Decompress are the libraries' one-shot calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace roam {

enum class Codec : int { kNone = 0, kLz4 = 1, kZstd = 2 };
const char* CodecName(Codec c);

struct CodecFigures {
  double compress_bps = 0;  // raw bytes compressed per second
  double ratio = 1;         // compressed / raw
  int samples = 0;
};

// A piece ready for the wire: compressed when that made it smaller, with
// what the try cost (for CodecChooser::Learn).
struct PackedPiece {
  std::string data;          // what goes on the wire
  Codec codec = Codec::kNone;  // how `data` is compressed
  size_t raw_size = 0;
  Codec tried = Codec::kNone;
  size_t tried_size = 0;
  double secs = 0;
};
// Compresses `raw` with `c` and keeps the result if it is smaller.
PackedPiece Pack(Codec c, std::string raw);

class CodecChooser {
 public:
  // `forced`: always this codec (roamd.conf `compress = lz4|zstd|off`);
  // kNone with `automatic` false means never compress.
  explicit CodecChooser(bool automatic = true, Codec forced = Codec::kNone)
      : automatic_(automatic), forced_(forced) {}

  // The link's measured drain rate, bytes per second (0: not known yet).
  void set_link_bps(double bps) { link_bps_ = bps; }
  // One piece of `raw` bytes became `out` bytes in `secs` with codec `c`.
  void Measured(Codec c, size_t raw, size_t out, double secs);
  void Learn(const PackedPiece& p) { Measured(p.tried, p.raw_size, p.tried_size, p.secs); }
  // Parses roamd.conf's `compress` (auto, off, lz4, zstd).
  static Result<CodecChooser> FromSetting(const std::string& setting);
  // The codec for the next piece. Every 16th piece tries a codec not in
  // use so that the figures follow the data (a heap that fills with random
  // numbers stops compressing).
  Codec Next();
  // The cheapest per raw byte by the figures now (no trials). Pure.
  Codec Best() const;
  const CodecFigures& figures(Codec c) const { return figures_[static_cast<int>(c)]; }

 private:
  double SecondsPerByte(Codec c) const;

  bool automatic_;
  Codec forced_;
  double link_bps_ = 0;
  CodecFigures figures_[3];
  uint64_t pieces_ = 0;
};


// `data` compressed with `c` (kNone: a copy).
std::string Compress(Codec c, const char* data, size_t len);
// A piece as it came off the wire (PrecopyPages, ImageChunk): `data`
// itself when `codec` is 0, else decompressed. A codec this node does not
// know, a raw size over 64 MiB or a damaged piece is an error.
Result<std::string> Unpack(int codec, std::string data, uint64_t raw_size);


}  // namespace roam
