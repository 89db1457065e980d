#include "node/page_codec.h"

#include <lz4.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>

namespace roam {

namespace {

constexpr double kBlend = 0.3;        // weight of a new measurement
constexpr double kWorthMargin = 0.9;  // a codec must save 10% to be used
constexpr uint64_t kTrialEvery = 16;
constexpr int kZstdLevel = 1;
constexpr uint64_t kMaxPieceBytes = 64ULL << 20;

// Back to exactly `raw_size` bytes, or an error (a peer's damaged or lying
// piece never overruns anything).
Result<std::string> Decompress(Codec c, const std::string& data, size_t raw_size) {
  if (c == Codec::kNone) {
    if (data.size() != raw_size) return Status::Error(StatusCode::kInvalid, "uncompressed piece of the wrong size");
    return data;
  }
  std::string out(raw_size, '\0');
  if (c == Codec::kLz4) {
    const int n = LZ4_decompress_safe(data.data(), out.data(), static_cast<int>(data.size()), static_cast<int>(raw_size));
    if (n < 0 || static_cast<size_t>(n) != raw_size) {
      return Status::Error(StatusCode::kInvalid, "damaged LZ4 piece");
    }
    return out;
  }
  if (c == Codec::kZstd) {
    const size_t n = ZSTD_decompress(out.data(), raw_size, data.data(), data.size());
    if (ZSTD_isError(n) || n != raw_size) return Status::Error(StatusCode::kInvalid, "damaged zstd piece");
    return out;
  }
  return Status::Error(StatusCode::kInvalid, "unknown compression " + std::to_string(static_cast<int>(c)));
}

}  // namespace

const char* CodecName(Codec c) {
  switch (c) {
    case Codec::kNone: return "none";
    case Codec::kLz4: return "lz4";
    case Codec::kZstd: return "zstd";
  }
  return "?";
}

void CodecChooser::Measured(Codec c, size_t raw, size_t out, double secs) {
  if (c == Codec::kNone || raw == 0) return;
  CodecFigures& f = figures_[static_cast<int>(c)];
  const double bps = static_cast<double>(raw) / std::max(secs, 1e-6);
  const double ratio = static_cast<double>(out) / static_cast<double>(raw);
  if (f.samples == 0) {
    f.compress_bps = bps;
    f.ratio = ratio;
  } else {
    f.compress_bps += kBlend * (bps - f.compress_bps);
    f.ratio += kBlend * (ratio - f.ratio);
  }
  ++f.samples;
}

double CodecChooser::SecondsPerByte(Codec c) const {
  if (c == Codec::kNone) return 1.0 / link_bps_;
  const CodecFigures& f = figures(c);
  return std::max(1.0 / f.compress_bps, f.ratio / link_bps_);
}

Codec CodecChooser::Best() const {
  if (!automatic_) return forced_;
  if (link_bps_ <= 0) return Codec::kNone;
  Codec best = Codec::kNone;
  double cost = SecondsPerByte(Codec::kNone) * kWorthMargin;
  for (Codec c : {Codec::kLz4, Codec::kZstd}) {
    if (figures(c).samples == 0) continue;
    const double s = SecondsPerByte(c);
    if (s < cost) {
      best = c;
      cost = s * kWorthMargin;  // zstd must beat LZ4 by the margin too
    }
  }
  return best;
}

Codec CodecChooser::Next() {
  if (!automatic_) return forced_;
  const uint64_t n = pieces_++;
  // Unknown figures are measured first, then re-measured now and then.
  for (Codec c : {Codec::kLz4, Codec::kZstd}) {
    if (figures(c).samples == 0) return c;
  }
  const Codec best = Best();
  if (n % kTrialEvery == 0) return best == Codec::kLz4 ? Codec::kZstd : Codec::kLz4;
  return best;
}

Result<CodecChooser> CodecChooser::FromSetting(const std::string& setting) {
  if (setting == "auto" || setting.empty()) return CodecChooser();
  if (setting == "off") return CodecChooser(false, Codec::kNone);
  if (setting == "lz4") return CodecChooser(false, Codec::kLz4);
  if (setting == "zstd") return CodecChooser(false, Codec::kZstd);
  return Status::Error(StatusCode::kInvalid, "compress: expected auto, off, lz4 or zstd, not '" + setting + "'");
}

PackedPiece Pack(Codec c, std::string raw) {
  PackedPiece p;
  p.raw_size = raw.size();
  p.tried = c;
  if (c != Codec::kNone && !raw.empty()) {
    const auto t0 = std::chrono::steady_clock::now();
    std::string out = Compress(c, raw.data(), raw.size());
    p.secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    p.tried_size = out.empty() ? raw.size() : out.size();
    if (!out.empty() && out.size() < raw.size()) {
      p.data = std::move(out);
      p.codec = c;
      return p;
    }
  }
  p.data = std::move(raw);
  return p;
}

std::string Compress(Codec c, const char* data, size_t len) {
  std::string out;
  switch (c) {
    case Codec::kNone:
      out.assign(data, len);
      break;
    case Codec::kLz4: {
      out.resize(static_cast<size_t>(LZ4_compressBound(static_cast<int>(len))));
      const int n = LZ4_compress_default(data, out.data(), static_cast<int>(len), static_cast<int>(out.size()));
      out.resize(n > 0 ? static_cast<size_t>(n) : 0);
      break;
    }
    case Codec::kZstd: {
      out.resize(ZSTD_compressBound(len));
      const size_t n = ZSTD_compress(out.data(), out.size(), data, len, kZstdLevel);
      out.resize(ZSTD_isError(n) ? 0 : n);
      break;
    }
  }
  return out;
}

Result<std::string> Unpack(int codec, std::string data, uint64_t raw_size) {
  if (codec == 0) return data;
  if (codec != static_cast<int>(Codec::kLz4) && codec != static_cast<int>(Codec::kZstd)) {
    return Status::Error(StatusCode::kInvalid, "unknown compression " + std::to_string(codec));
  }
  if (raw_size > kMaxPieceBytes) return Status::Error(StatusCode::kInvalid, "compressed piece too large");
  return Decompress(static_cast<Codec>(codec), data, static_cast<size_t>(raw_size));
}


}  // namespace roam
