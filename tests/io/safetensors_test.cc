#include "io/safetensors.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/json.h"

namespace zerotune {
namespace {

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "zerotune_safetensors_" + name;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good());
}

bool file_exists(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

std::string u64_le(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[static_cast<size_t>(i)] = static_cast<char>(value >> (8 * i));
  return bytes;
}

// A file with the given header text and `data_bytes` bytes of data (values 0, 1, 2, ...).
std::string craft(const std::string& header, int64_t data_bytes) {
  std::string bytes = u64_le(header.size()) + header;
  for (int64_t i = 0; i < data_bytes; ++i) bytes += static_cast<char>(i & 0xFF);
  return bytes;
}

// The message of the Error that opening `bytes` (written to a file) throws.
std::string open_error(const std::string& bytes, const std::string& name = "bad.safetensors") {
  const std::string path = temp_path(name);
  write_bytes(path, bytes);
  try {
    SafetensorsFile::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected open() to fail";
  return "";
}

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

// Fills a buffer with a recognisable byte pattern that differs per tensor.
Buffer patterned(DType dtype, Shape shape, int seed) {
  Buffer buffer(dtype, shape);
  auto* bytes = static_cast<unsigned char*>(buffer.view().data);
  for (int64_t i = 0; i < buffer.view().nbytes(); ++i) {
    bytes[i] = static_cast<unsigned char>(i * 7 + seed * 31 + 1);
  }
  return buffer;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.nbytes() != b.nbytes()) return false;
  return a.nbytes() == 0 || std::memcmp(a.data, b.data, static_cast<size_t>(a.nbytes())) == 0;
}

TEST(Safetensors, RoundTripsAllDtypesAndShapes) {
  std::vector<Buffer> buffers;
  buffers.push_back(patterned(DType::bf16, Shape{5}, 1));  // odd byte count before wider types
  buffers.push_back(patterned(DType::f32, Shape{2, 3}, 2));
  buffers.push_back(patterned(DType::f16, Shape{3, 1, 2}, 3));
  buffers.push_back(patterned(DType::i32, Shape{7}, 4));
  buffers.push_back(patterned(DType::i64, Shape{2, 2}, 5));
  buffers.push_back(patterned(DType::f32, Shape{}, 6));                // 0-d scalar
  buffers.push_back(patterned(DType::f32, Shape{0, 4}, 7));            // empty
  buffers.push_back(patterned(DType::bf16, Shape{1, 2, 1, 3, 2}, 8));  // kMaxDims
  buffers.push_back(patterned(DType::i64, Shape{0}, 9));
  const std::vector<std::string> names = {
      "model.embed_tokens.weight", "b", "c", "d", "e", "scalar", "empty", "five_d", "empty_i64"};
  std::vector<NamedTensor> tensors;
  for (size_t i = 0; i < buffers.size(); ++i) tensors.push_back({names[i], buffers[i].view()});
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "caf\xC3\xA9"}};
  const std::string path = temp_path("roundtrip.safetensors");
  write_safetensors(path, tensors, metadata);
  EXPECT_FALSE(file_exists(path + ".tmp"));

  const SafetensorsFile file = SafetensorsFile::open(path);
  EXPECT_EQ(file.path(), path);
  EXPECT_EQ(file.metadata(), metadata);
  ASSERT_EQ(file.entries().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const SafetensorsEntry& entry = file.entries()[i];
    EXPECT_EQ(entry.name, names[i]);  // header order is the order given
    EXPECT_EQ(entry.dtype, tensors[i].tensor.dtype) << entry.name;
    EXPECT_EQ(entry.shape, tensors[i].tensor.shape) << entry.name;
    const Tensor t = file.tensor(entry);
    EXPECT_TRUE(t.device.is_cpu());
    EXPECT_EQ(t.shape, tensors[i].tensor.shape);
    EXPECT_TRUE(same_bytes(t, tensors[i].tensor)) << entry.name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % static_cast<uintptr_t>(dtype_size(t.dtype)), 0u)
        << entry.name;
    ASSERT_EQ(file.find(names[i]), &entry);
  }
  EXPECT_EQ(file.find("missing"), nullptr);
  EXPECT_EQ(file.tensor(*file.find("scalar")).numel(), 1);
  EXPECT_EQ(file.tensor(*file.find("empty")).numel(), 0);
  // A copy of an entry still resolves to the tensor of that name.
  const SafetensorsEntry copy = *file.find("d");
  EXPECT_TRUE(same_bytes(file.tensor(copy), buffers[3].view()));
}

TEST(Safetensors, WrittenLayoutIsAlignedAndContiguous) {
  Buffer a = patterned(DType::bf16, Shape{3}, 1);  // 6 bytes
  Buffer b = patterned(DType::f32, Shape{3}, 2);
  Buffer c = patterned(DType::i64, Shape{1}, 3);
  Buffer d = patterned(DType::f16, Shape{1}, 4);
  const std::string path = temp_path("layout.safetensors");
  write_safetensors(path, {{"a", a.view()}, {"b", b.view()}, {"c", c.view()}, {"d", d.view()}});
  const std::string bytes = read_bytes(path);
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, bytes.data(), 8);  // test machines are little-endian
  EXPECT_EQ((8 + header_bytes) % 8, 0u) << "data section must start 8-byte aligned";
  const std::string header = bytes.substr(8, header_bytes);
  EXPECT_EQ(header.front(), '{');
  EXPECT_EQ(header.find_first_not_of(' ', header.find_last_of('}') + 1), std::string::npos)
      << "padding must be spaces";
  EXPECT_EQ(header.find("__metadata__"), std::string::npos) << "no metadata given";

  // HF's loader rejects gaps: ranges must tile the data section exactly; and each begin must be
  // a multiple of its element size.
  const SafetensorsFile file = SafetensorsFile::open(path);
  std::vector<SafetensorsEntry> sorted = file.entries();
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& x, const auto& y) { return x.begin < y.begin; });
  int64_t expected_begin = 0;
  for (const SafetensorsEntry& entry : sorted) {
    EXPECT_EQ(entry.begin, expected_begin) << entry.name;
    EXPECT_EQ(entry.begin % dtype_size(entry.dtype), 0) << entry.name;
    expected_begin = entry.end;
  }
  EXPECT_EQ(expected_begin, file.data_section_bytes());
  EXPECT_EQ(static_cast<int64_t>(bytes.size()),
            8 + static_cast<int64_t>(header_bytes) + 6 + 12 + 8 + 2);
  // The header is our own JSON, readable with the documented keys.
  const json::Value parsed = json::parse(header, "header");
  EXPECT_EQ(parsed.find("b")->find("dtype")->as_string("dtype"), "F32");
  EXPECT_EQ(parsed.find("b")->find("shape")->dump(), "[3]");
}

TEST(Safetensors, MoveKeepsMappingAlive) {
  Buffer a = patterned(DType::f32, Shape{16}, 3);
  const std::string path = temp_path("move.safetensors");
  write_safetensors(path, {{"a", a.view()}});
  SafetensorsFile first = SafetensorsFile::open(path);
  SafetensorsFile second = std::move(first);
  SafetensorsFile third = SafetensorsFile::open(path);
  third = std::move(second);
  EXPECT_TRUE(same_bytes(third.tensor(*third.find("a")), a.view()));
}

TEST(Safetensors, OverwritesExistingFileAtomically) {
  Buffer a = patterned(DType::f32, Shape{4}, 1);
  Buffer b = patterned(DType::i32, Shape{2}, 2);
  const std::string path = temp_path("overwrite.safetensors");
  write_safetensors(path, {{"a", a.view()}});
  write_safetensors(path, {{"b", b.view()}}, {{"k", "v"}});
  const SafetensorsFile file = SafetensorsFile::open(path);
  EXPECT_EQ(file.find("a"), nullptr);
  ASSERT_NE(file.find("b"), nullptr);
  EXPECT_TRUE(same_bytes(file.tensor(*file.find("b")), b.view()));
  EXPECT_EQ(file.metadata().at("k"), "v");
  EXPECT_FALSE(file_exists(path + ".tmp"));
}

TEST(Safetensors, FailedWriteLeavesExistingFileIntact) {
  Buffer a = patterned(DType::f32, Shape{4}, 1);
  const std::string path = temp_path("keep.safetensors");
  write_safetensors(path, {{"a", a.view()}});
  const std::string before = read_bytes(path);

  try {
    write_safetensors(path, {{"x", a.view()}, {"y", a.view()}, {"x", a.view()}});
    FAIL() << "duplicate names accepted";
  } catch (const Error& e) {
    EXPECT_HAS(e.what(), "duplicate tensor \"x\"");
    EXPECT_HAS(e.what(), path);
  }
  float dummy = 0;
  const Tensor on_gpu(&dummy, DType::f32, Shape{1}, Device::cuda(0));
  EXPECT_THROW(write_safetensors(path, {{"g", on_gpu}}), Error);
  EXPECT_THROW(write_safetensors(path, {{"__metadata__", a.view()}}), Error);
  EXPECT_THROW(write_safetensors(path, {{"", a.view()}}), Error);
  const Tensor no_data(nullptr, DType::f32, Shape{2});
  EXPECT_THROW(write_safetensors(path, {{"n", no_data}}), Error);
  // Unwritable destination: the error names it and nothing is left behind.
  EXPECT_THROW(write_safetensors(temp_path("no_such_dir/x.safetensors"), {{"a", a.view()}}), Error);

  EXPECT_EQ(read_bytes(path), before);
  EXPECT_FALSE(file_exists(path + ".tmp"));
}

TEST(Safetensors, ReadsMisalignedDataSectionIntoAlignedMemory) {
  // A header of 13 bytes puts the data section at offset 21: an F32 view would be misaligned.
  const std::string header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("h":{"dtype":"F16","shape":[1],"data_offsets":[8,10]}})";
  std::string padded = header;
  while ((8 + padded.size()) % 4 != 1) padded += ' ';
  const std::string path = temp_path("misaligned.safetensors");
  write_bytes(path, craft(padded, 10));
  const SafetensorsFile file = SafetensorsFile::open(path);
  const Tensor w = file.tensor(*file.find("w"));
  const Tensor h = file.tensor(*file.find("h"));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w.data) % 4, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(h.data) % 2, 0u);
  const auto* w_bytes = static_cast<const unsigned char*>(w.data);
  const auto* h_bytes = static_cast<const unsigned char*>(h.data);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(w_bytes[i], i);
  EXPECT_EQ(h_bytes[0], 8);
  EXPECT_EQ(h_bytes[1], 9);
}

TEST(Safetensors, AcceptsEmptyHeaderObject) {
  const std::string path = temp_path("empty_header.safetensors");
  write_bytes(path, craft("{}", 0));
  EXPECT_TRUE(SafetensorsFile::open(path).entries().empty());
  write_safetensors(path, {});
  EXPECT_TRUE(SafetensorsFile::open(path).entries().empty());
}

// --- Rejections of crafted files ---------------------------------------------------------------

TEST(SafetensorsReject, MissingFile) {
  const std::string path = temp_path("does_not_exist.safetensors");
  try {
    SafetensorsFile::open(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_HAS(e.what(), "[safetensors] " + path + ": cannot open");
  }
}

TEST(SafetensorsReject, FileShorterThanEightBytes) {
  EXPECT_HAS(open_error(std::string("\x05\0\0", 3), "short.safetensors"),
             "short.safetensors: file is 3 bytes");
  EXPECT_HAS(open_error(""), "file is 0 bytes, shorter than the 8-byte header length");
}

TEST(SafetensorsReject, AbsurdHeaderLength) {
  EXPECT_HAS(open_error(u64_le(uint64_t{1} << 60) + "{}"),
             "header length 1152921504606846976 exceeds the 100 MiB limit");
  EXPECT_HAS(open_error(u64_le(~uint64_t{0}) + "{}"), "exceeds the 100 MiB limit");
}

TEST(SafetensorsReject, HeaderLengthPastEnd) {
  EXPECT_HAS(open_error(u64_le(1000) + "{}"),
             "header length 1000 runs past the end of the file (10 bytes)");
}

TEST(SafetensorsReject, InvalidJsonHeader) {
  EXPECT_HAS(open_error(craft(R"({"a": })", 0)),
             "invalid JSON header: header:1:7: expected a value, got '}'");
  EXPECT_HAS(open_error(craft("[1, 2]", 0)), "header must be an object, got array");
  EXPECT_HAS(open_error(craft(std::string("{}\0\0", 4), 0)), "invalid JSON header");
  EXPECT_HAS(open_error(craft(R"({"a": 5})", 0)), "tensor \"a\" header entry must be an object");
}

TEST(SafetensorsReject, OffsetsPastEnd) {
  const std::string header =
      R"({"lm_head.weight":{"dtype":"F32","shape":[10,10],"data_offsets":[0,400]}})";
  EXPECT_HAS(open_error(craft(header, 320), "model.safetensors"),
             "[safetensors] " + temp_path("model.safetensors") +
                 ": tensor \"lm_head.weight\" data_offsets [0, 400] past the end of the data "
                 "section (320 bytes)");
  // Offsets beyond 2^53 and beyond int64 must not wrap around.
  EXPECT_HAS(open_error(craft(R"({"a":{"dtype":"F32","shape":[1],)"
                              R"("data_offsets":[9007199254740993,9007199254740997]}})",
                              8)),
             "past the end of the data section (8 bytes)");
  EXPECT_HAS(open_error(craft(R"({"a":{"dtype":"F32","shape":[1],)"
                              R"("data_offsets":[0,18446744073709551620]}})",
                              8)),
             "\"data_offsets\"[1] must be an integer");
}

TEST(SafetensorsReject, BeginAfterEnd) {
  EXPECT_HAS(open_error(craft(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 16)),
             "tensor \"a\" data_offsets [8, 4] begin after end");
  EXPECT_HAS(open_error(craft(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 16)),
             "are negative");
}

TEST(SafetensorsReject, SizeShapeMismatch) {
  EXPECT_HAS(open_error(craft(R"({"a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,24]}})", 24)),
             "tensor \"a\" data_offsets [0, 24] hold 24 bytes but BF16 [2, 3] needs 12");
  // numel * element size overflowing int64 is caught, not wrapped into a small number.
  EXPECT_HAS(open_error(craft(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],)"
                              R"("data_offsets":[0,0]}})",
                              0)),
             "is too large");
}

TEST(SafetensorsReject, OverlappingTensors) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
  EXPECT_HAS(open_error(craft(header, 16)),
             "tensor \"a\" [0, 16] and tensor \"b\" [8, 16] overlap in the data section");
  const std::string same = R"({"a":{"dtype":"I32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_HAS(open_error(craft(same, 8)), "overlap");
  // Empty tensors may share an offset with anything.
  const std::string empty = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})";
  const std::string path = temp_path("empty_overlap.safetensors");
  write_bytes(path, craft(empty, 8));
  EXPECT_EQ(SafetensorsFile::open(path).entries().size(), 2u);
}

TEST(SafetensorsReject, UnknownDtype) {
  for (const char* dtype : {"F64", "U8", "BOOL", "f32", "F8_E4M3"}) {
    const std::string header =
        str(R"({"emb":{"dtype":")", dtype, R"(","shape":[1],"data_offsets":[0,8]}})");
    EXPECT_HAS(open_error(craft(header, 8)),
               str("tensor \"emb\" has dtype \"", dtype, "\", which zerotune does not support"));
  }
  EXPECT_HAS(open_error(craft(R"({"a":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})", 4)),
             "tensor \"a\": \"dtype\" must be a string, got number");
  EXPECT_HAS(open_error(craft(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4)),
             "tensor \"a\" has no \"dtype\"");
}

TEST(SafetensorsReject, BadShapes) {
  EXPECT_HAS(open_error(craft(R"({"a":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,0]}})", 0)),
             "tensor \"a\" shape [2,-3] has a negative dimension");
  EXPECT_HAS(
      open_error(craft(R"({"a":{"dtype":"F32","shape":[1,1,1,1,1,1],"data_offsets":[0,4]}})", 4)),
      "has 6 dimensions, at most 5 are supported");
  EXPECT_HAS(open_error(craft(R"({"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", 8)),
             "\"shape\"[0] must be an integer, got string");
  EXPECT_HAS(open_error(craft(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}})", 8)),
             "must be an integer, got 1.5");
  EXPECT_HAS(open_error(craft(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8)),
             "\"shape\" must be an array, got number");
}

TEST(SafetensorsReject, BadOffsetsAndMetadata) {
  EXPECT_HAS(open_error(craft(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", 8)),
             "data_offsets [0,4,8] must be [begin, end]");
  EXPECT_HAS(open_error(craft(R"({"a":{"dtype":"F32","shape":[1]}})", 8)),
             "tensor \"a\" has no \"data_offsets\"");
  EXPECT_HAS(open_error(craft(R"({"__metadata__":{"format":1}})", 0)),
             "\"__metadata__\" \"format\" must be a string, got number");
  EXPECT_HAS(open_error(craft(R"({"__metadata__":[]})", 0)),
             "\"__metadata__\" must be an object, got array");
}

TEST(SafetensorsReject, MutatedFilesEitherOpenOrThrowError) {
  // Corrupt the length field and header of a valid file: open() must either reject it with a
  // zerotune::Error or hand out views that lie inside the file (ASan checks the reads).
  Buffer a = patterned(DType::f32, Shape{2, 3}, 1);
  Buffer b = patterned(DType::bf16, Shape{5}, 2);
  const std::string good_path = temp_path("fuzz_source.safetensors");
  write_safetensors(good_path, {{"a", a.view()}, {"b", b.view()}}, {{"format", "pt"}});
  const std::string original = read_bytes(good_path);
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, original.data(), 8);
  const char alphabet[] = "0123456789,[]{}\":-FBI ";
  std::mt19937 rng(99);
  const std::string path = temp_path("fuzz.safetensors");
  for (int iteration = 0; iteration < 400; ++iteration) {
    std::string bytes = original;
    const size_t at = rng() % (8 + header_bytes);
    if (at < 8) {
      bytes[at] = static_cast<char>(rng() & 0xFF);
    } else {
      bytes[at] = alphabet[rng() % (sizeof(alphabet) - 1)];
    }
    if (rng() % 4 == 0) bytes.resize(rng() % bytes.size());  // truncation
    write_bytes(path, bytes);
    try {
      const SafetensorsFile file = SafetensorsFile::open(path);
      for (const SafetensorsEntry& entry : file.entries()) {
        const Tensor t = file.tensor(entry);
        const auto* p = static_cast<const unsigned char*>(t.data);
        unsigned sum = 0;
        for (int64_t i = 0; i < t.nbytes(); ++i) sum += p[i];
        EXPECT_LE(entry.end, file.data_section_bytes());
        (void)sum;
      }
    } catch (const Error& e) {
      EXPECT_HAS(e.what(), "[safetensors] " + path);
    } catch (...) {
      ADD_FAILURE() << "non-zerotune exception at iteration " << iteration;
    }
  }
}

}  // namespace
}  // namespace zerotune
