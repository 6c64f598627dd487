#include "data/hf_text.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "core/check.h"
#include "core/text.h"

namespace zerotune {

namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// The length of the valid sequence starting at text[i], or 0 with *maximal_subpart set to the
// number of bytes to replace by one U+FFFD (Unicode's "maximal subpart" rule, section 3.9).
size_t valid_sequence_length(std::string_view text, size_t i, size_t* maximal_subpart) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  size_t length = 0;
  unsigned char low = 0x80, high = 0xbf;  // the range of the second byte
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;
    if (lead == 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;
    if (lead == 0xf4) high = 0x8f;
  } else {
    *maximal_subpart = 1;
    return 0;
  }
  size_t k = 1;
  for (; k < length && i + k < text.size(); ++k) {
    const unsigned char b = byte(i + k);
    const bool ok = k == 1 ? (b >= low && b <= high) : (b >= 0x80 && b <= 0xbf);
    if (!ok) break;
  }
  if (k == length) return length;
  *maximal_subpart = k;
  return 0;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t bad = 0;
    const size_t n = valid_sequence_length(text, i, &bad);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string utf8_lossy(std::string_view text) {
  if (is_valid_utf8(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 8);
  size_t i = 0;
  while (i < text.size()) {
    size_t bad = 0;
    const size_t n = valid_sequence_length(text, i, &bad);
    if (n > 0) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      out += kReplacement;
      i += bad;
    }
  }
  return out;
}

uint32_t next_code_point(std::string_view text, size_t pos, size_t* length) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  size_t n = 1;
  uint32_t cp = lead;
  if (lead >= 0xf0) {
    n = 4, cp = lead & 0x07u;
  } else if (lead >= 0xe0) {
    n = 3, cp = lead & 0x0fu;
  } else if (lead >= 0xc0) {
    n = 2, cp = lead & 0x1fu;
  }
  for (size_t k = 1; k < n && pos + k < text.size(); ++k) {
    cp = cp << 6 | (static_cast<unsigned char>(text[pos + k]) & 0x3fu);
  }
  *length = n;
  return cp;
}

bool is_unicode_whitespace(uint32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0d);
  return u_isUWhiteSpace(static_cast<UChar32>(cp));
}

bool is_word_char(uint32_t cp) {
  if (cp < 0x80)
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
           cp == '_';
  const auto c = static_cast<UChar32>(cp);
  const int8_t type = u_charType(c);
  const bool numeric =
      type == U_DECIMAL_DIGIT_NUMBER || type == U_LETTER_NUMBER || type == U_OTHER_NUMBER;
  return u_isUAlphabetic(c) || numeric;
}

std::string nfc(std::string_view text) {
  bool ascii = true;
  for (const char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) return std::string(text);
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2* normalizer = unorm2_getNFCInstance(&status);
  ZT_CHECK(U_SUCCESS(status), "NFC: ICU has no NFC data (", u_errorName(status), ")");
  // UTF-8 -> UTF-16 -> NFC -> UTF-8: ICU's C API normalizes UTF-16 only.
  std::u16string wide(text.size(), u'\0');
  int32_t wide_length = 0;
  u_strFromUTF8(wide.data(), static_cast<int32_t>(wide.size()), &wide_length, text.data(),
                static_cast<int32_t>(text.size()), &status);
  ZT_CHECK(U_SUCCESS(status), "NFC: invalid UTF-8 (", u_errorName(status), ")");
  if (unorm2_isNormalized(normalizer, wide.data(), wide_length, &status) && U_SUCCESS(status)) {
    return std::string(text);
  }
  status = U_ZERO_ERROR;
  // NFC output is at most three times its input in UTF-16 code units.
  std::u16string normal(static_cast<size_t>(wide_length) * 3 + 16, u'\0');
  const int32_t normal_length =
      unorm2_normalize(normalizer, wide.data(), wide_length, normal.data(),
                       static_cast<int32_t>(normal.size()), &status);
  ZT_CHECK(U_SUCCESS(status), "NFC: ICU failed (", u_errorName(status), ")");
  std::string out(static_cast<size_t>(normal_length) * 3, '\0');
  int32_t out_length = 0;
  u_strToUTF8(out.data(), static_cast<int32_t>(out.size()), &out_length, normal.data(),
              normal_length, &status);
  ZT_CHECK(U_SUCCESS(status), "NFC: ICU failed (", u_errorName(status), ")");
  out.resize(static_cast<size_t>(out_length));
  return out;
}

// ---- byte-level alphabet ----------------------------------------------------------------------

const ByteLevelAlphabet& ByteLevelAlphabet::get() {
  static const ByteLevelAlphabet alphabet;
  return alphabet;
}

// GPT-2: the printable bytes '!'..'~', '¡'..'¬', '®'..'ÿ' stand for themselves; the other 68
// bytes take code points 256, 257, ... in byte order.
ByteLevelAlphabet::ByteLevelAlphabet() {
  byte_of_.fill(-1);
  uint32_t next_extra = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    const uint32_t cp = printable ? b : next_extra++;
    append_utf8(spelling_[b], cp);
    byte_of_[cp] = static_cast<int16_t>(b);
  }
}

void ByteLevelAlphabet::encode(std::string_view bytes, std::string& out) const {
  for (const char c : bytes) out += spelling_[static_cast<unsigned char>(c)];
}

void ByteLevelAlphabet::decode(std::string_view token, std::string& out) const {
  size_t pos = 0;
  while (pos < token.size()) {
    size_t length = 0;
    const uint32_t cp = next_code_point(token, pos, &length);
    if (cp < byte_of_.size() && byte_of_[cp] >= 0) {
      out += static_cast<char>(byte_of_[cp]);
    } else {
      out.append(token.substr(pos, length));
    }
    pos += length;
  }
}

// ---- Regex ------------------------------------------------------------------------------------

struct Regex::Compiled {
  pcre2_code* code = nullptr;
};

namespace {

// Per-thread match data (one ovector pair is all find_all reads) and a JIT stack large enough
// for long runs of whitespace under the (?!\S) lookahead.
struct MatchScratch {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  MatchScratch() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~MatchScratch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

}  // namespace

Regex::Regex(const std::string& pattern, const std::string& what)
    : compiled_(std::make_unique<Compiled>()) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                  PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (!compiled_->code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    ZT_CHECK(false, what, ": the regular expression does not compile at offset ", offset, ": ",
             reinterpret_cast<const char*>(message));
  }
  // JIT is an optimisation: where the platform lacks it, the interpreter gives the same matches.
  (void)pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE);
}

Regex::~Regex() {
  pcre2_code_free(compiled_->code);
}

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  thread_local MatchScratch scratch;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start < text.size()) {
    const int rc = pcre2_match(compiled_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK,
                               scratch.data, scratch.context);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    ZT_CHECK(rc >= 0, "regex: matching failed with PCRE2 error ", rc);
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(scratch.data);
    const size_t begin = ovector[0], end = ovector[1];
    if (end > begin) {
      out.emplace_back(begin, end);
      start = end;
    } else {
      // An empty match: step over one code point, as an iterator over matches does.
      size_t length = 1;
      (void)next_code_point(text, end, &length);
      start = end + length;
    }
  }
}

}  // namespace zerotune
