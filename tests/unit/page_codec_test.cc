// Compression of memory between nodes (src/node/page_codec.h): the choice
// by measured speeds, and pieces that survive the trip or are refused.
#include "node/page_codec.h"

#include <gtest/gtest.h>

#include <random>

namespace roam {
namespace {

constexpr double kMiB = 1 << 20;

// Figures as measured on a typical heap: LZ4 at 600 MiB/s to 40%, zstd at
// 250 MiB/s to 28%.
CodecChooser Measured(double link_mibps) {
  CodecChooser c;
  c.Measured(Codec::kLz4, 1 << 20, (1 << 20) * 40 / 100, 1.0 / 600);
  c.Measured(Codec::kZstd, 1 << 20, (1 << 20) * 28 / 100, 1.0 / 250);
  c.set_link_bps(link_mibps * kMiB);
  return c;
}

TEST(CodecChooser, AFastLinkTakesPagesRaw) {
  EXPECT_EQ(Measured(1200).Best(), Codec::kNone);  // loopback, veth
  EXPECT_EQ(Measured(700).Best(), Codec::kNone);   // LZ4 would be the bottleneck
}

TEST(CodecChooser, GigabitEthernetTakesLz4AndSlowerLinksZstd) {
  EXPECT_EQ(Measured(110).Best(), Codec::kLz4);   // 1 GbE: 40% at 600 beats raw at 110
  EXPECT_EQ(Measured(11).Best(), Codec::kZstd);   // 100 Mb/s: the ratio counts most
}

TEST(CodecChooser, RandomDataGoesRawEverywhere) {
  CodecChooser c;
  c.Measured(Codec::kLz4, 1 << 20, (1 << 20) + 4096, 1.0 / 3000);
  c.Measured(Codec::kZstd, 1 << 20, (1 << 20) + 40, 1.0 / 800);
  c.set_link_bps(11 * kMiB);
  EXPECT_EQ(c.Best(), Codec::kNone);
}

TEST(CodecChooser, UnknownLinkOrFiguresMeanMeasureFirst) {
  CodecChooser c;
  EXPECT_EQ(c.Best(), Codec::kNone);  // nothing known: raw
  EXPECT_EQ(c.Next(), Codec::kLz4);   // then each codec is tried once
  c.Measured(Codec::kLz4, 1 << 20, 1 << 19, 0.002);
  EXPECT_EQ(c.Next(), Codec::kZstd);
  c.Measured(Codec::kZstd, 1 << 20, 1 << 18, 0.004);
  c.set_link_bps(1200 * kMiB);
  int tried = 0;
  for (int i = 0; i < 64; ++i) tried += c.Next() != Codec::kNone;
  EXPECT_EQ(tried, 4);  // one piece in 16 re-measures a codec not in use
}

TEST(CodecChooser, SettingsForceOrForbid) {
  EXPECT_EQ(CodecChooser::FromSetting("off")->Next(), Codec::kNone);
  EXPECT_EQ(CodecChooser::FromSetting("zstd")->Next(), Codec::kZstd);
  EXPECT_EQ(CodecChooser::FromSetting("lz4")->Best(), Codec::kLz4);
  EXPECT_TRUE(CodecChooser::FromSetting("auto").ok());
  EXPECT_FALSE(CodecChooser::FromSetting("gzip").ok());
}

std::string Heapish(size_t n) {
  std::string s;
  std::mt19937 rng(7);
  while (s.size() < n) s += "key" + std::to_string(rng() % 1000) + "=value;" + std::string(rng() % 16, '\0');
  s.resize(n);
  return s;
}

TEST(PageCodec, PiecesSurviveTheTrip) {
  const std::string raw = Heapish(1 << 20);
  for (Codec c : {Codec::kLz4, Codec::kZstd}) {
    PackedPiece p = Pack(c, raw);
    EXPECT_EQ(p.codec, c) << CodecName(c);
    EXPECT_LT(p.data.size(), raw.size() / 2) << CodecName(c);
    EXPECT_EQ(p.tried_size, p.data.size());
    Result<std::string> back = Unpack(static_cast<int>(p.codec), p.data, p.raw_size);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(*back, raw);
  }
}

TEST(PageCodec, APieceThatDoesNotShrinkGoesRaw) {
  std::string random(1 << 16, '\0');
  std::mt19937 rng(1);
  for (char& ch : random) ch = static_cast<char>(rng());
  PackedPiece p = Pack(Codec::kLz4, random);
  EXPECT_EQ(p.codec, Codec::kNone);
  EXPECT_EQ(p.data, random);
  EXPECT_EQ(p.tried, Codec::kLz4);
  EXPECT_GE(p.tried_size, random.size());
}

TEST(PageCodec, DamagedOrLyingPiecesAreRefused) {
  const std::string raw = Heapish(1 << 16);
  for (Codec c : {Codec::kLz4, Codec::kZstd}) {
    PackedPiece p = Pack(c, raw);
    std::string damaged = p.data;
    damaged.resize(damaged.size() / 2);  // truncated on purpose
    EXPECT_FALSE(Unpack(static_cast<int>(c), damaged, p.raw_size).ok()) << CodecName(c);
    EXPECT_FALSE(Unpack(static_cast<int>(c), p.data, p.raw_size + 1).ok()) << CodecName(c);  // wrong size
    EXPECT_FALSE(Unpack(static_cast<int>(c), p.data, 1ULL << 40).ok()) << CodecName(c);      // absurd size
  }
  EXPECT_FALSE(Unpack(9, raw, raw.size()).ok());
  EXPECT_EQ(*Unpack(0, raw, 0), raw);  // raw pieces need no size
}

}  // namespace
}  // namespace roam
