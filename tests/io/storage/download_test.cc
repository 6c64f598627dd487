// download_resumable() against a server inside the test process (loopback_server.h) that drops
// connections, ignores ranges, changes the object, refuses or keeps failing on request.
#include "io/storage/download.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/check.h"
#include "io/storage/credentials.h"
#include "io/storage/crypto.h"
#include "loopback_server.h"

namespace zerotune::storage {
namespace {

namespace fs = std::filesystem;
using testing::LoopbackServer;
using testing::ReceivedRequest;
using testing::Reply;

const RetryPolicy kQuickRetries{3, 0, 0};  // three attempts, no waiting

// Bytes that differ at every offset a test could get wrong (no repeating period under 2^16).
std::string object_bytes(size_t n) {
  std::string bytes(n, '\0');
  uint32_t x = 12345;
  for (char& c : bytes) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 16);
  }
  return bytes;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A fresh folder per test; returns the destination path inside it.
std::string fresh_destination(const std::string& test) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("zt_download_" + test);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return (dir / "model.safetensors").string();
}

// The object as a server that honours "Range: bytes=N-" serves it.
Reply serve(const std::string& object, const ReceivedRequest& request) {
  const std::string range = request.header("range");
  if (range.empty()) return {200, {}, object};
  const size_t start = std::stoul(range.substr(range.find('=') + 1));
  if (start >= object.size()) return {416, {}, "range not satisfiable"};
  const std::string content_range = "bytes " + std::to_string(start) + "-" +
                                    std::to_string(object.size() - 1) + "/" +
                                    std::to_string(object.size());
  return {206, {{"Content-Range", content_range}}, object.substr(start)};
}

// A download of `server`'s /model.safetensors verified by sha256 against `expected_sha256`.
ResumableDownload sha256_download(const LoopbackServer& server, const std::string& path,
                                  const std::string& expected_sha256) {
  ResumableDownload d;
  d.name = server.url("/model.safetensors");
  d.path = path;
  d.make_request = [url = d.name](const HeaderList& resume_headers) {
    HttpRequest request;
    request.url = url;
    request.headers = resume_headers;
    return request;
  };
  d.verify = [expected_sha256](const std::string& file,
                               const HttpResponse&) -> std::optional<std::string> {
    const std::string actual = to_hex(hash_file(HashKind::sha256, file));
    if (actual == expected_sha256) return std::nullopt;
    return "sha256 of the downloaded bytes is " + actual + ", expected " + expected_sha256;
  };
  return d;
}

// A server function that serves `object` honouring ranges, whatever the request's index.
LoopbackServer::Respond serving(const std::string& object) {
  return [object](const ReceivedRequest& request, size_t) { return serve(object, request); };
}

// The Range header of each request the server received, "" where there was none.
std::vector<std::string> ranges_of(const LoopbackServer& server) {
  std::vector<std::string> ranges;
  for (const ReceivedRequest& r : server.requests()) ranges.push_back(r.header("range"));
  return ranges;
}

// The download succeeds with exactly `object` at its path and no .partial file left.
void expect_saved(const ResumableDownload& d, const std::string& object) {
  EXPECT_EQ(download_resumable(d, kQuickRetries), DownloadResult::saved);
  EXPECT_EQ(read_file(d.path), object);
  EXPECT_FALSE(fs::exists(d.path + ".partial"));
}

using Ranges = std::vector<std::string>;

TEST(DownloadResumable, DropMidFileResumesFromTheRightByte) {
  const std::string object = object_bytes(200000);
  LoopbackServer server([&](const ReceivedRequest& request, size_t index) {
    Reply reply = serve(object, request);
    if (index == 0) reply.send_only = 70001;  // the connection drops after 70001 bytes
    return reply;
  });
  const std::string path = fresh_destination("drop");
  const ResumableDownload d = sha256_download(server, path, sha256_hex(object));
  expect_saved(d, object);
  EXPECT_EQ(ranges_of(server), (Ranges{"", "bytes=70001-"}));
}

TEST(DownloadResumable, PartialFileOfAnEarlierRunIsContinuedWithItsVersion) {
  const std::string object = object_bytes(5000);
  LoopbackServer server(serving(object));
  const std::string path = fresh_destination("earlier_run");
  write_file(path + ".partial", object.substr(0, 1234));
  ResumableDownload d = sha256_download(server, path, sha256_hex(object));
  d.known_size = static_cast<int64_t>(object.size());
  d.etag = "v1";
  expect_saved(d, object);
  EXPECT_EQ(ranges_of(server), (Ranges{"bytes=1234-"}));
  EXPECT_EQ(server.requests().at(0).header("if-match"), "\"v1\"");
}

TEST(DownloadResumable, WrongChecksumIsRefusedNamingTheObjectAndLeavesNoFile) {
  const std::string object = object_bytes(30000);
  std::string corrupted = object;
  corrupted[17] = static_cast<char>(corrupted[17] ^ 0x20);
  LoopbackServer server([&](const ReceivedRequest& request, size_t index) {
    Reply reply = serve(corrupted, request);
    if (index == 0) reply.send_only = 9000;  // resumed bytes take part in the check too
    return reply;
  });
  const std::string path = fresh_destination("checksum");
  const ResumableDownload d = sha256_download(server, path, sha256_hex(object));
  try {
    download_resumable(d, kQuickRetries);
    FAIL() << "a corrupted download was accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(d.name + ": sha256 of the downloaded bytes is " + sha256_hex(corrupted)),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("expected " + sha256_hex(object)), std::string::npos) << what;
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".partial"));
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST(DownloadResumable, ServerIgnoringRangeRestartsCleanly) {
  const std::string object = object_bytes(40000);
  LoopbackServer server([&](const ReceivedRequest&, size_t index) {
    Reply reply{200, {}, object};  // whatever the Range, the whole object
    if (index == 0) reply.send_only = 15000;
    return reply;
  });
  const std::string path = fresh_destination("ignored_range");
  // Bytes that are not the object's prefix: appending the answer to them would corrupt the file.
  write_file(path + ".partial", std::string(777, 'x'));
  const ResumableDownload d = sha256_download(server, path, sha256_hex(object));
  expect_saved(d, object);
  EXPECT_EQ(ranges_of(server), (Ranges{"bytes=777-", "bytes=15000-"}));
}

TEST(DownloadResumable, RetriesExhaustedNameTheUrlWithoutAnySecret) {
  const std::string secret = "zt-download-secret-never-printed-77";
  register_secret(secret);
  std::atomic<bool> answer{true};  // 503 each time, or (second half) no answer at all
  LoopbackServer server([&](const ReceivedRequest&, size_t) {
    return answer ? Reply{503, {}, "slow down"} : Reply{0, {}, ""};
  });
  const std::string path = fresh_destination("exhausted");
  const std::string plain_url = server.url("/model.safetensors");
  ResumableDownload d = sha256_download(server, path, "");
  d.name = plain_url + "?signature=" + secret;  // a presigned URL carries its secret
  d.make_request = [&](const HeaderList& resume_headers) {
    HttpRequest request;
    request.url = d.name;
    request.headers = {{"authorization", "Bearer " + secret}};
    for (const auto& h : resume_headers) request.headers.push_back(h);
    return request;
  };
  for (const bool with_status : {true, false}) {
    answer = with_status;
    write_file(path + ".partial", "first bytes");
    try {
      download_resumable(d, kQuickRetries);
      FAIL() << "a download that always fails succeeded";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("GET " + plain_url), std::string::npos) << what;
      EXPECT_NE(what.find("after 3 attempts"), std::string::npos) << what;
      EXPECT_NE(what.find(with_status ? "HTTP 503" : "Empty reply"), std::string::npos) << what;
      EXPECT_EQ(what.find(secret), std::string::npos) << what;
    }
    EXPECT_FALSE(fs::exists(path));
    // Failures that may pass keep what came, for a later run to continue.
    EXPECT_EQ(read_file(path + ".partial"), "first bytes");
  }
  EXPECT_EQ(server.requests().size(), 6u);
}

TEST(DownloadResumable, ChangedObjectStartsOverWithoutARange) {
  const std::string object = object_bytes(8000);
  LoopbackServer server([&](const ReceivedRequest& request, size_t) {
    const std::string if_match = request.header("if-match");
    if (!if_match.empty() && if_match != "\"v2\"") return Reply{412, {}, "precondition failed"};
    return serve(object, request);
  });
  const std::string path = fresh_destination("changed");
  write_file(path + ".partial", object_bytes(3000).substr(0, 100));
  ResumableDownload d = sha256_download(server, path, sha256_hex(object));
  d.known_size = static_cast<int64_t>(object.size());
  d.etag = "v1";  // the listing's version; the server has moved on to v2
  expect_saved(d, object);
  EXPECT_EQ(ranges_of(server), (Ranges{"bytes=100-", ""}));
  EXPECT_EQ(server.requests().at(1).header("if-match"), "");
}

TEST(DownloadResumable, KnownSizeSkipsCompleteFilesAndDropsLongerOnes) {
  const std::string object = object_bytes(6000);
  LoopbackServer server(serving(object));
  const std::string path = fresh_destination("known_size");
  ResumableDownload d = sha256_download(server, path, sha256_hex(object));
  d.known_size = static_cast<int64_t>(object.size());
  write_file(path + ".partial", object);  // complete, but never verified and renamed
  expect_saved(d, object);
  EXPECT_EQ(ranges_of(server), Ranges{});

  write_file(path + ".partial", object + "tail");  // longer: not this object's prefix
  expect_saved(d, object);
  EXPECT_EQ(ranges_of(server), (Ranges{""}));
}

TEST(DownloadResumable, SizeOtherThanExpectedIsAnError) {
  const std::string object = object_bytes(6000);
  LoopbackServer server(serving(object));
  const std::string path = fresh_destination("size");
  ResumableDownload d = sha256_download(server, path, sha256_hex(object));
  d.promised_size = [](const HttpResponse&) { return int64_t{6001}; };
  try {
    download_resumable(d, kQuickRetries);
    FAIL() << "a short download was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(d.name + ": downloaded 6000 bytes, expected 6001"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST(DownloadResumable, CompleteFileAnswered416IsVerifiedAndKept) {
  const std::string object = object_bytes(3000);
  LoopbackServer server(serving(object));
  const std::string path = fresh_destination("416");
  write_file(path + ".partial", object);
  const ResumableDownload d = sha256_download(server, path, sha256_hex(object));
  expect_saved(d, object);
  EXPECT_EQ(ranges_of(server), (Ranges{"bytes=3000-"}));
}

TEST(DownloadResumable, RefusalsAreExplainedAndMissingObjectsReported) {
  LoopbackServer server([&](const ReceivedRequest& request, size_t) {
    return request.header("range").empty() ? Reply{403, {}, "denied"} : Reply{404, {}, "gone"};
  });
  const std::string path = fresh_destination("refused");
  ResumableDownload d = sha256_download(server, path, "");
  d.explain_status = [](const HttpResponse& r) { return "; the body says " + r.body; };
  try {
    download_resumable(d, kQuickRetries);
    FAIL() << "a 403 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("GET " + d.name + ": HTTP 403; the body says denied"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(server.requests().size(), 1u);  // a refusal is not retried

  write_file(path + ".partial", "stale bytes");
  d.missing = ResumableDownload::Missing::report;
  EXPECT_EQ(download_resumable(d, kQuickRetries), DownloadResult::missing);
  EXPECT_FALSE(fs::exists(path + ".partial"));  // they belong to nothing the server has
  d.missing = ResumableDownload::Missing::fail;
  write_file(path + ".partial", "stale bytes");
  EXPECT_THROW(download_resumable(d, kQuickRetries), Error);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".partial"));
}

}  // namespace
}  // namespace zerotune::storage
