// Hashes and MACs for object storage, on OpenSSL's EVP interface: SHA-256 and HMAC-SHA256 for
// AWS Signature Version 4, MD5 for S3's Content-MD5 and ETags, SHA-1 for the Hub's git blob ids.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace zerotune::storage {

enum class HashKind : uint8_t { md5, sha1, sha256 };

// An incremental hash; digest() ends it.
class Hasher {
 public:
  explicit Hasher(HashKind kind);
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(std::string_view bytes);
  std::string digest();  // raw bytes

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string hash_bytes(HashKind kind, std::string_view bytes);            // raw digest
std::string hmac_sha256(std::string_view key, std::string_view message);  // raw digest
std::string to_hex(std::string_view raw);                                 // lower case
std::string to_base64(std::string_view raw);
// Whether `text` is a digest in hex of `hex_chars` characters (32 for MD5, 40 for SHA-1, 64 for
// SHA-256), as ETags and the Hub's hash headers spell them.
bool is_hex_digest(std::string_view text, size_t hex_chars);

std::string sha256_hex(std::string_view bytes);
// Digest of a file's bytes [offset, offset + length); length -1 reads to the end. Errors name the
// file.
std::string hash_file(HashKind kind, const std::string& path, int64_t offset = 0,
                      int64_t length = -1);

// The Hub's id of a small (non-LFS) file: git's blob id, sha1("blob <size>\0" + bytes), in hex.
std::string git_blob_sha1_hex_of_file(const std::string& path);

}  // namespace zerotune::storage
