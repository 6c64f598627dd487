// SentencePiece ModelProto bytes written by hand (protobuf wire format), for tests of the readers
// that must not depend on the sentencepiece library.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace zerotune {

inline void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out += static_cast<char>((value & 0x7f) | 0x80);
    value >>= 7;
  }
  out += static_cast<char>(value);
}

inline void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_varint(out, static_cast<uint64_t>(field) << 3 | 2);
  put_varint(out, bytes.size());
  out += bytes;
}

struct Piece {
  std::string text;
  float score;
  int type;  // 1 NORMAL, 2 UNKNOWN, 3 CONTROL, 6 BYTE
};

inline std::string piece_message(const Piece& p) {
  std::string out;
  put_bytes(out, 1, p.text);
  put_varint(out, 2 << 3 | 5);  // float score, fixed32 little-endian
  uint32_t bits = 0;
  std::memcpy(&bits, &p.score, 4);
  for (int k = 0; k < 4; ++k) out += static_cast<char>((bits >> (8 * k)) & 0xff);
  put_varint(out, 3 << 3 | 0);
  put_varint(out, static_cast<uint64_t>(p.type));
  return out;
}

// ModelProto {pieces = 1; trainer_spec = 2 {model_type = 3}}; model_type 0 leaves it out (the
// proto's default, UNIGRAM).
inline std::string model_proto(const std::vector<Piece>& pieces, int model_type) {
  std::string proto;
  for (const Piece& p : pieces) put_bytes(proto, 1, piece_message(p));
  std::string trainer;
  put_bytes(trainer, 1, "corpus.txt");  // trainer_spec.input, skipped
  if (model_type != 0) {
    put_varint(trainer, 3 << 3 | 0);
    put_varint(trainer, static_cast<uint64_t>(model_type));
  }
  put_bytes(proto, 2, trainer);
  return proto;
}

}  // namespace zerotune
