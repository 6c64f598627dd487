// URL and Hub id parsing, credentials files, part sizes, retry classification and backoff, XML
// pieces and secret redaction.
#include <curl/curl.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "core/text.h"
#include "io/storage/credentials.h"
#include "io/storage/crypto.h"
#include "io/storage/http.h"
#include "io/storage/hub_client.h"
#include "io/storage/s3_client.h"
#include "io/storage/s3_xml.h"
#include "io/storage/url.h"

namespace zerotune::storage {
namespace {

TEST(S3Url, ParsesBucketAndKey) {
  S3Url u = parse_s3_url("s3://my-bucket/a/b/");
  EXPECT_EQ(u.bucket, "my-bucket");
  EXPECT_EQ(u.key, "a/b");
  EXPECT_EQ(u.str(), "s3://my-bucket/a/b");
  u = parse_s3_url("s3://my.bucket");
  EXPECT_EQ(u.key, "");
  EXPECT_FALSE(is_s3_url("/tmp/s3://x"));
  for (const char* bad :
       {"s3://", "s3://ab", "s3://Upper/x", "s3://b_b/x", "s3://bucket/a//b", "http://bucket/x"}) {
    EXPECT_THROW(parse_s3_url(bad), Error) << bad;
  }
  try {
    parse_s3_url("s3://B/x");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("s3://B/x"), std::string::npos) << e.what();
  }
  EXPECT_EQ(join_key("a/", "/b"), "a/b");
  EXPECT_EQ(join_key("", "b"), "b");
}

TEST(S3Url, PercentEncoding) {
  EXPECT_EQ(uri_encode("a b/c~d_e-f.g+h$", SlashMode::keep), "a%20b/c~d_e-f.g%2Bh%24");
  EXPECT_EQ(uri_encode("a/b", SlashMode::encode), "a%2Fb");
  EXPECT_EQ(uri_encode("\xc3\xa9", SlashMode::keep), "%C3%A9");
}

TEST(HubRepo, TellsHubIdsFromPaths) {
  HubRepo r;
  ASSERT_TRUE(parse_hub_repo("meta-llama/Llama-2-7b-hf", &r));
  EXPECT_EQ(r.id, "meta-llama/Llama-2-7b-hf");
  EXPECT_EQ(r.revision, "main");
  ASSERT_TRUE(parse_hub_repo("org/model@v1.0", &r));
  EXPECT_EQ(r.revision, "v1.0");
  for (const char* not_id : {"model", "/abs/path", "./rel/x", "../x/y", "a/b/c", "~/x", "a/..b",
                             "a/b@", "org/na me", "", "a/", "/a"}) {
    EXPECT_FALSE(parse_hub_repo(not_id, nullptr)) << not_id;
  }
}

TEST(Credentials, ParsesProfilesAndComments) {
  const std::string text =
      "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key=secretdef\n\n"
      "[profile other]\n; other\n aws_access_key_id=AKIDOTHER \naws_secret_access_key = sec2\n"
      "aws_session_token = tok2\n";
  Credentials d = parse_credentials_file(text, "default", "creds");
  EXPECT_EQ(d.access_key_id, "AKIDDEFAULT");
  EXPECT_EQ(d.secret_access_key, "secretdef");
  EXPECT_EQ(d.session_token, "");
  Credentials o = parse_credentials_file(text, "other", "creds");
  EXPECT_EQ(o.access_key_id, "AKIDOTHER");
  EXPECT_EQ(o.session_token, "tok2");
  EXPECT_EQ(parse_credentials_file(text, "missing", "creds").access_key_id, "");
  try {
    parse_credentials_file("[a]\naws_secret_access_key hunter2hunter2\n", "a", "creds");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("creds:2"), std::string::npos) << what;
    EXPECT_EQ(what.find("hunter2"), std::string::npos) << "the line holds a secret: " << what;
  }
}

TEST(Credentials, EnvironmentFirstThenFileAndSecretsAreRedacted) {
  ::setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "envsecretvalue", 1);
  ::setenv("AWS_SESSION_TOKEN", "envsessiontoken", 1);
  const Credentials c = load_credentials("s3://b/k");
  EXPECT_EQ(c.access_key_id, "AKIDENV");
  EXPECT_EQ(c.source, "environment");
  EXPECT_EQ(redact("x envsecretvalue y envsessiontoken"), "x *** y ***");
  EXPECT_EQ(redact("Credential=AKIDENV/..., Signature=0123abcdef, more"),
            "Credential=AKIDENV/..., Signature=***, more");
  ::unsetenv("AWS_SESSION_TOKEN");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  EXPECT_THROW(load_credentials("s3://b/k"), Error);  // key id without secret
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
  try {
    load_credentials("s3://b/k");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/credentials"), std::string::npos);
  }
  ::unsetenv("AWS_SHARED_CREDENTIALS_FILE");
}

TEST(Endpoint, RegionAndPathStyleForCustomEndpoints) {
  ::setenv("AWS_REGION", "eu-west-1", 1);
  ::unsetenv("AWS_ENDPOINT_URL");
  ::unsetenv("AWS_ENDPOINT_URL_S3");
  S3Endpoint e = load_s3_endpoint();
  EXPECT_EQ(e.base_url, "https://s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(e.addressing, Addressing::virtual_host);
  ::setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000/", 1);
  e = load_s3_endpoint();
  EXPECT_EQ(e.base_url, "http://127.0.0.1:9000");
  EXPECT_EQ(e.addressing, Addressing::path);
  ::setenv("AWS_ENDPOINT_URL", "ftp://x", 1);
  EXPECT_THROW(load_s3_endpoint(), Error);
  ::unsetenv("AWS_ENDPOINT_URL");
  ::unsetenv("AWS_REGION");
}

TEST(S3Request, PathStyleAndVirtualHostUrls) {
  const Credentials c{"AKID", "secretsecret", "sessiontok", "test"};
  S3Client path_style({"us-east-1", "http://127.0.0.1:9000", Addressing::path}, c, {}, {});
  HttpRequest r = path_style.build_request("GET", {"bucket", "a b/c"}, {{"uploads", ""}}, {},
                                           "UNSIGNED-PAYLOAD", "20130524T000000Z");
  EXPECT_EQ(r.url, "http://127.0.0.1:9000/bucket/a%20b/c?uploads=");
  bool has_token = false, has_host = false;
  for (const auto& [name, value] : r.headers) {
    has_token |= name == "x-amz-security-token" && value == "sessiontok";
    has_host |= name == "host" && value == "127.0.0.1:9000";
  }
  EXPECT_TRUE(has_token && has_host);
  S3Client virtual_host(
      {"us-east-1", "https://s3.us-east-1.amazonaws.com", Addressing::virtual_host}, c, {}, {});
  r = virtual_host.build_request("GET", {"bucket", "k"}, {}, {}, "x", "20130524T000000Z");
  EXPECT_EQ(r.url, "https://bucket.s3.us-east-1.amazonaws.com/k");
  r = virtual_host.build_request("GET", {"my.bucket", "k"}, {}, {}, "x", "20130524T000000Z");
  EXPECT_EQ(r.url, "https://s3.us-east-1.amazonaws.com/my.bucket/k");
}

TEST(Multipart, PartSizeFitsTenThousandParts) {
  const int64_t MiB = 1 << 20;
  EXPECT_EQ(choose_part_size(0, 16 * MiB), 16 * MiB);
  EXPECT_EQ(choose_part_size(100 * MiB, 16 * MiB), 16 * MiB);
  const int64_t shard = 10LL * 1024 * 1024 * 1024 * 1024 / 1024;  // 10 GiB
  EXPECT_EQ(choose_part_size(shard, 16 * MiB), 16 * MiB);         // 640 parts
  const int64_t huge = 400LL * 1024 * MiB;                        // 400 GiB
  const int64_t part = choose_part_size(huge, 16 * MiB);
  EXPECT_LE((huge + part - 1) / part, 10000);
  EXPECT_EQ(part % MiB, 0);
  EXPECT_GT(part, 16 * MiB);
  EXPECT_THROW(choose_part_size(-1, MiB), Error);
}

TEST(Multipart, EtagIsMd5OfPartMd5s) {
  const std::string a = hash_bytes(HashKind::md5, "hello "), b = hash_bytes(HashKind::md5, "world");
  EXPECT_EQ(multipart_etag({a, b}), to_hex(hash_bytes(HashKind::md5, a + b)) + "-2");
}

TEST(Multipart, ChecksEtagsOfFiles) {
  const std::string path = ::testing::TempDir() + "/zt_etag_check.bin";
  const int64_t MiB = 1 << 20;
  std::string bytes(static_cast<size_t>(9 * MiB + 5), '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + i / 4096);
  {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  const int64_t size = static_cast<int64_t>(bytes.size());
  const std::string md5 = to_hex(hash_bytes(HashKind::md5, bytes));
  EXPECT_EQ(check_etag(path, size, md5, 16 * MiB), EtagCheck::match);
  std::string wrong = md5;
  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  EXPECT_EQ(check_etag(path, size, wrong, 16 * MiB), EtagCheck::mismatch);
  // Two parts of 5 MiB, as an upload with ZEROTUNE_S3_PART_SIZE=5 MiB makes them.
  const std::string multi = multipart_etag({hash_bytes(HashKind::md5, bytes.substr(0, 5 * MiB)),
                                            hash_bytes(HashKind::md5, bytes.substr(5 * MiB))});
  EXPECT_EQ(check_etag(path, size, multi, 5 * MiB), EtagCheck::match);
  EXPECT_EQ(check_etag(path, size, "0123456789abcdef0123456789abcdef-2", 5 * MiB),
            EtagCheck::unknown);
  EXPECT_EQ(check_etag(path, size, "W/opaque", 5 * MiB), EtagCheck::unknown);
  std::remove(path.c_str());
}

TEST(Retry, ClassifiesStatusesAndTransportErrors) {
  EXPECT_EQ(classify_status(200), RetryClass::success);
  EXPECT_EQ(classify_status(206), RetryClass::success);
  EXPECT_EQ(classify_status(500), RetryClass::retry);
  EXPECT_EQ(classify_status(503), RetryClass::retry);
  EXPECT_EQ(classify_status(429), RetryClass::retry);
  EXPECT_EQ(classify_status(408), RetryClass::retry);
  EXPECT_EQ(classify_status(403), RetryClass::fail);
  EXPECT_EQ(classify_status(404), RetryClass::fail);
  EXPECT_TRUE(is_retryable_transport(CURLE_RECV_ERROR));
  EXPECT_TRUE(is_retryable_transport(CURLE_GOT_NOTHING));
  EXPECT_TRUE(is_retryable_transport(CURLE_PARTIAL_FILE));
  EXPECT_TRUE(is_retryable_transport(CURLE_COULDNT_CONNECT));
  EXPECT_FALSE(is_retryable_transport(CURLE_URL_MALFORMAT));
  EXPECT_FALSE(is_retryable_transport(CURLE_WRITE_ERROR));
}

TEST(Retry, BackoffDoublesWithJitterAndCap) {
  const RetryPolicy p{6, 100, 1000};
  EXPECT_EQ(backoff_delay_ms(p, 1, 0.999999), 99);
  EXPECT_EQ(backoff_delay_ms(p, 2, 0.0), 100);
  EXPECT_EQ(backoff_delay_ms(p, 3, 0.0), 200);
  EXPECT_EQ(backoff_delay_ms(p, 30, 0.0), 500);  // capped at 1000, jitter halves
}

TEST(Retry, RetriesRetryableStatusesThenGivesUp) {
  int calls = 0;
  const RetryPolicy p{3, 0, 0};
  HttpResponse r = with_retries(p, "GET x", [&] {
    HttpResponse resp;
    resp.status = ++calls < 3 ? 503 : 200;
    return resp;
  });
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(calls, 3);
  calls = 0;
  r = with_retries(p, "GET x", [&] {
    ++calls;
    HttpResponse resp;
    resp.status = 403;
    return resp;
  });
  EXPECT_EQ(calls, 1);  // not retried
  calls = 0;
  EXPECT_THROW(with_retries(p, "GET x",
                            [&]() -> HttpResponse {
                              ++calls;
                              throw TransportError("dropped", CURLE_RECV_ERROR);
                            }),
               TransportError);
  EXPECT_EQ(calls, 3);
}

TEST(Retry, SettingsFromTheEnvironmentAreStrict) {
  ::unsetenv("ZEROTUNE_STORAGE_RETRIES");
  ::unsetenv("ZEROTUNE_STORAGE_RETRY_BASE_MS");
  EXPECT_EQ(retry_policy_from_env().max_attempts, RetryPolicy{}.max_attempts);
  ::setenv("ZEROTUNE_STORAGE_RETRIES", "3", 1);
  ::setenv("ZEROTUNE_STORAGE_RETRY_BASE_MS", "40", 1);
  const RetryPolicy p = retry_policy_from_env();
  EXPECT_EQ(p.max_attempts, 4);
  EXPECT_EQ(p.base_delay_ms, 40);
  ::unsetenv("ZEROTUNE_STORAGE_RETRY_BASE_MS");
  // Not a number, a number with a tail, out of range: each refused, never read as 0 or 3.
  for (const char* bad : {"abc", "3x", "101", "-1", " "}) {
    ::setenv("ZEROTUNE_STORAGE_RETRIES", bad, 1);
    try {
      retry_policy_from_env();
      FAIL() << "accepted ZEROTUNE_STORAGE_RETRIES='" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()),
                std::string("ZEROTUNE_STORAGE_RETRIES must be 0-100, got '") + bad + "'");
    }
  }
  ::unsetenv("ZEROTUNE_STORAGE_RETRIES");
  ::setenv("ZEROTUNE_S3_PART_SIZE", "1048576", 1);
  try {
    s3_tuning_from_env();
    FAIL() << "accepted a 1 MiB part size";
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("must be 5 MiB to 5 GiB (S3's part limits), got '1048576'"),
        std::string::npos)
        << e.what();
  }
  ::setenv("ZEROTUNE_S3_PART_SIZE", "8388608", 1);
  ::setenv("ZEROTUNE_S3_UPLOAD_THREADS", "7", 1);
  const S3Tuning t = s3_tuning_from_env();
  EXPECT_EQ(t.min_part_size, 8 << 20);
  EXPECT_EQ(t.upload_threads, 7);
  ::unsetenv("ZEROTUNE_S3_PART_SIZE");
  ::unsetenv("ZEROTUNE_S3_UPLOAD_THREADS");
}

TEST(S3Xml, ElementsTextAndErrors) {
  const std::string doc =
      "<R><Contents><Key>a&amp;b</Key><ETag>&quot;x&quot;</ETag></Contents>"
      "<Contents><Key>c&#13;</Key></Contents><IsTruncated>true</IsTruncated></R>";
  const auto items = xml_elements(doc, "Contents");
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(xml_text(items[0], "Key"), "a&b");
  EXPECT_EQ(xml_text(items[0], "ETag"), "\"x\"");
  EXPECT_EQ(xml_text(items[1], "Key"), "c\r");
  EXPECT_EQ(xml_text(doc, "Missing"), "");
  EXPECT_EQ(escape_markup("<a&'\">"), "&lt;a&amp;&#39;&#34;&gt;");
  EXPECT_EQ(s3_error_summary("<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>"),
            "S3 error NoSuchKey: gone");
  EXPECT_EQ(s3_error_summary("<ok/>"), "");
}

TEST(Hub, NeverFetchesPickles) {
  EXPECT_TRUE(is_pickled_weights("pytorch_model.bin"));
  EXPECT_TRUE(is_pickled_weights("x.pt"));
  EXPECT_FALSE(is_pickled_weights("model.safetensors"));
  for (const std::string& f : hub_model_files()) EXPECT_FALSE(is_pickled_weights(f)) << f;
  HubClient hub("http://127.0.0.1:1/", "", {});
  EXPECT_EQ(hub.file_url({"org/m", "main"}, "a b.json"),
            "http://127.0.0.1:1/org/m/resolve/main/a%20b.json");
  EXPECT_THROW(hub.download({"org/m", "main"}, "pytorch_model.bin", "/tmp/never"), Error);
  EXPECT_THROW(HubClient("huggingface.co", "", {}), Error);
}

TEST(Crypto, HexDigestsAndEtags) {
  EXPECT_TRUE(is_hex_digest("d41d8cd98f00b204e9800998ecf8427e", 32));
  EXPECT_TRUE(is_hex_digest("D41D8CD98F00B204E9800998ECF8427E", 32));
  EXPECT_FALSE(is_hex_digest("d41d8cd98f00b204e9800998ecf8427e", 40));
  EXPECT_FALSE(is_hex_digest("g41d8cd98f00b204e9800998ecf8427e", 32));
  EXPECT_FALSE(is_hex_digest("", 32));
  EXPECT_EQ(unquote_etag("\"abc-2\""), "abc-2");
  EXPECT_EQ(unquote_etag("abc"), "abc");
  EXPECT_EQ(unquote_etag("\""), "\"");
  EXPECT_EQ(unquote_etag("W/\"abc\""), "W/\"abc\"");
}

TEST(Crypto, KnownDigests) {
  EXPECT_EQ(to_hex(hash_bytes(HashKind::md5, "")), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(to_base64(hash_bytes(HashKind::md5, "")), "1B2M2Y8AsgTpgAmY7PhCfg==");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // RFC 4231 test case 2.
  EXPECT_EQ(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

}  // namespace
}  // namespace zerotune::storage
