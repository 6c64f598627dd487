#include "io/storage/crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/check.h"

namespace zerotune::storage {

struct Hasher::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

static const EVP_MD* evp_md(HashKind kind) {
  switch (kind) {
    case HashKind::md5:
      return EVP_md5();
    case HashKind::sha1:
      return EVP_sha1();
    case HashKind::sha256:
      return EVP_sha256();
  }
  fail("internal: unknown hash kind");
}

Hasher::Hasher(HashKind kind) : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  ZT_CHECK(impl_->ctx && EVP_DigestInit_ex(impl_->ctx, evp_md(kind), nullptr) == 1,
           "OpenSSL: cannot start a digest");
}

Hasher::~Hasher() {
  EVP_MD_CTX_free(impl_->ctx);
}

void Hasher::update(std::string_view bytes) {
  ZT_CHECK(EVP_DigestUpdate(impl_->ctx, bytes.data(), bytes.size()) == 1,
           "OpenSSL: digest update failed");
}

std::string Hasher::digest() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  ZT_CHECK(EVP_DigestFinal_ex(impl_->ctx, out, &n) == 1, "OpenSSL: digest final failed");
  return std::string(reinterpret_cast<const char*>(out), n);
}

std::string hash_bytes(HashKind kind, std::string_view bytes) {
  Hasher h(kind);
  h.update(bytes);
  return h.digest();
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  ZT_CHECK(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                reinterpret_cast<const unsigned char*>(message.data()), message.size(), out,
                &n) != nullptr,
           "OpenSSL: HMAC-SHA256 failed");
  return std::string(reinterpret_cast<const char*>(out), n);
}

std::string to_hex(std::string_view raw) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::string to_base64(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(raw.data()),
                                static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

bool is_hex_digest(std::string_view text, size_t hex_chars) {
  return text.size() == hex_chars && std::all_of(text.begin(), text.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) != 0;
         });
}

std::string sha256_hex(std::string_view bytes) {
  return to_hex(hash_bytes(HashKind::sha256, bytes));
}

static void hash_file_into(Hasher& h, const std::string& path, int64_t offset, int64_t length) {
  std::ifstream in(path, std::ios::binary);
  ZT_CHECK(in, path, ": cannot open for reading");
  in.seekg(offset);
  ZT_CHECK(in, path, ": cannot seek to byte ", offset);
  std::vector<char> buf(1 << 20);
  int64_t left = length;
  while (left != 0) {
    const int64_t want =
        left < 0 ? static_cast<int64_t>(buf.size()) : std::min<int64_t>(left, buf.size());
    in.read(buf.data(), want);
    const int64_t got = in.gcount();
    if (got <= 0) break;
    h.update(std::string_view(buf.data(), static_cast<size_t>(got)));
    if (left > 0) left -= got;
  }
  ZT_CHECK(left <= 0, path, ": ended ", left, " bytes early while hashing");
}

std::string hash_file(HashKind kind, const std::string& path, int64_t offset, int64_t length) {
  Hasher h(kind);
  hash_file_into(h, path, offset, length);
  return h.digest();
}

std::string git_blob_sha1_hex_of_file(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  ZT_CHECK(!ec, path, ": cannot stat (", ec.message(), ")");
  Hasher h(HashKind::sha1);
  const std::string header = "blob " + std::to_string(size);
  h.update(std::string_view(header.c_str(), header.size() + 1));  // with the NUL
  hash_file_into(h, path, 0, -1);
  return to_hex(h.digest());
}

}  // namespace zerotune::storage
