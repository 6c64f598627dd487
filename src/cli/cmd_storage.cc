// `zerotune storage ls|cp|rm|fetch`: object storage from the command line, with the same client,
// credentials and retries as training uses.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/check.h"
#include "io/storage/model_source.h"
#include "io/storage/s3_client.h"
#include "io/storage/url.h"

namespace zerotune {

namespace fs = std::filesystem;
using storage::S3Client;
using storage::S3Object;
using storage::S3Url;

namespace {

const char* kStorageUsage =
    "usage: zerotune storage <action> ARGS [flags]\n"
    "\n"
    "  ls s3://bucket/prefix        list objects (size, ETag, key), following pagination\n"
    "  cp SRC DST                   copy a file or folder between a local path and s3://\n"
    "  cat s3://bucket/key          write an object's bytes to stdout (--offset, --length: a\n"
    "                               range)\n"
    "  rm s3://bucket/key           delete an object (--recursive: every object under a prefix)\n"
    "  fetch MODEL                  download a model (s3:// or Hub id) into the cache, print its\n"
    "                               folder\n"
    "\n"
    "S3: credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN] or\n"
    "~/.aws/credentials (AWS_PROFILE); AWS_REGION; AWS_ENDPOINT_URL for S3-compatible services.\n"
    "Hub: HF_ENDPOINT, HF_TOKEN. Cache: ZEROTUNE_CACHE (default ~/.cache/zerotune).\n";

// Objects under `url` as a folder (key prefix + '/'); an exact object is not included.
std::vector<S3Object> folder_objects(S3Client& s3, const S3Url& url) {
  const std::string prefix = url.key.empty() ? "" : url.key + "/";
  return s3.list_objects(S3Url{url.bucket, prefix});
}

int copy(const std::string& src, const std::string& dst) {
  const bool src_s3 = storage::is_s3_url(src), dst_s3 = storage::is_s3_url(dst);
  ZT_CHECK(src_s3 != dst_s3, "zerotune storage cp: exactly one of SRC and DST must be s3://, got '",
           src, "' and '", dst, "'");
  S3Client s3 = S3Client::from_environment(src_s3 ? src : dst);
  int64_t count = 0;
  if (dst_s3) {
    const S3Url to = storage::parse_s3_url(dst);
    ZT_CHECK(fs::exists(src), "zerotune storage cp: ", src, ": no such file or folder");
    if (fs::is_directory(src)) {
      for (const auto& entry : fs::recursive_directory_iterator(src)) {
        if (!entry.is_regular_file()) continue;
        const std::string rel = fs::relative(entry.path(), src).string();
        s3.upload_file(entry.path().string(), S3Url{to.bucket, storage::join_key(to.key, rel)});
        ++count;
      }
    } else {
      s3.upload_file(src, to);
      count = 1;
    }
  } else {
    const S3Url from = storage::parse_s3_url(src);
    if (const auto object = from.key.empty() ? std::nullopt : s3.head_object(from)) {
      const fs::path to =
          fs::is_directory(dst) ? fs::path(dst) / fs::path(from.key).filename() : fs::path(dst);
      s3.download_file(from, *object, to.string());
      count = 1;
    } else {
      const std::vector<S3Object> objects = folder_objects(s3, from);
      ZT_CHECK(!objects.empty(), "zerotune storage cp: ", src, ": no such object or prefix");
      const size_t strip = from.key.empty() ? 0 : from.key.size() + 1;
      for (const S3Object& o : objects) {
        const fs::path to = fs::path(dst) / o.key.substr(strip);
        fs::create_directories(to.parent_path());
        s3.download_file(S3Url{from.bucket, o.key}, o, to.string());
        ++count;
      }
    }
  }
  std::printf("{\"copied\": %lld}\n", static_cast<long long>(count));
  return 0;
}

}  // namespace

int cmd_storage(int argc, char** argv, int first) {
  if (first >= argc || !std::strcmp(argv[first], "--help") || !std::strcmp(argv[first], "-h")) {
    std::fputs(kStorageUsage, first >= argc ? stderr : stdout);
    return first >= argc ? 2 : 0;
  }
  const std::string action = argv[first];
  // Positional arguments may come before or after the flags; Args sees only the flags.
  std::vector<std::string> positional;
  std::vector<char*> flags = {argv[0]};
  for (int i = first + 1; i < argc; ++i) {
    if (argv[i][0] == '-') {
      flags.push_back(argv[i]);
      const bool takes_value = !std::strcmp(argv[i], "--page-size") ||
                               !std::strcmp(argv[i], "--offset") ||
                               !std::strcmp(argv[i], "--length");
      if (takes_value && i + 1 < argc) flags.push_back(argv[++i]);
    } else {
      positional.push_back(argv[i]);
    }
  }
  Args args("zerotune storage " + action, kStorageUsage);
  args.flag("--recursive", "rm: every object under the prefix")
      .option("--page-size", "N", "ls: keys per listing request (1-1000)", "1000")
      .option("--offset", "BYTES", "cat: first byte", "0")
      .option("--length", "BYTES", "cat: bytes to read (-1: to the end)", "-1");
  if (!args.parse(static_cast<int>(flags.size()), flags.data(), 1)) return 0;
  auto need = [&](size_t n, const char* what) {
    ZT_CHECK(positional.size() == n, "zerotune storage ", action, ": expected ", what, ", got ",
             positional.size(), " argument(s)");
  };
  if (action == "ls") {
    need(1, "s3://bucket/prefix");
    const S3Url url = storage::parse_s3_url(positional[0]);
    S3Client s3 = S3Client::from_environment(positional[0]);
    for (const S3Object& o : s3.list_objects(url, args.get_int("--page-size"))) {
      std::printf("%12lld  %s  s3://%s/%s\n", static_cast<long long>(o.size), o.etag.c_str(),
                  url.bucket.c_str(), o.key.c_str());
    }
    return 0;
  }
  if (action == "cat") {
    need(1, "s3://bucket/key");
    const int64_t offset = args.get_int("--offset"), length = args.get_int("--length");
    ZT_CHECK(offset >= 0 && length >= -1,
             "zerotune storage cat: --offset must be >= 0 and "
             "--length >= -1, got ",
             offset, " and ", length);
    S3Client s3 = S3Client::from_environment(positional[0]);
    const std::string bytes = s3.get_object(storage::parse_s3_url(positional[0]), offset, length);
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
    return 0;
  }
  if (action == "cp") {
    need(2, "SRC DST");
    return copy(positional[0], positional[1]);
  }
  if (action == "rm") {
    need(1, "s3://bucket/key");
    const S3Url url = storage::parse_s3_url(positional[0]);
    S3Client s3 = S3Client::from_environment(positional[0]);
    int64_t count = 0;
    if (args.has("--recursive")) {
      for (const S3Object& o : folder_objects(s3, url)) {
        s3.delete_object(S3Url{url.bucket, o.key});
        ++count;
      }
    } else {
      s3.delete_object(url);
      count = 1;
    }
    std::printf("{\"deleted\": %lld}\n", static_cast<long long>(count));
    return 0;
  }
  if (action == "fetch") {
    need(1, "MODEL (a folder, s3://bucket/prefix or owner/name)");
    std::printf("%s\n", storage::resolve_model_source(positional[0]).c_str());
    return 0;
  }
  fail(str("zerotune storage: unknown action '", action, "' (ls, cat, cp, rm, fetch)"));
}

}  // namespace zerotune
