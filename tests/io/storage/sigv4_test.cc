// SigV4 against the examples AWS publishes (the SigV4 test suite's get-vanilla and the S3 API
// reference's GET object, PUT object, GET lifecycle and list-objects examples).
#include "io/storage/sigv4.h"

#include <gtest/gtest.h>

#include "core/check.h"
#include "io/storage/crypto.h"

namespace zerotune::storage {
namespace {

const char* kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

Credentials s3_example_credentials() {
  return {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "", "test"};
}

std::string signature_of(const std::string& authorization) {
  return authorization.substr(authorization.rfind('=') + 1);
}

TEST(SigV4, GetVanillaFromTheSigV4TestSuite) {
  SigV4Request r;
  r.method = "GET";
  r.encoded_path = "/";
  r.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
  r.payload_sha256 = kEmptySha256;
  const SigV4Scope scope{"20150830T123600Z", "us-east-1", "service"};
  EXPECT_EQ(
      canonical_request(r),
      "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" +
          std::string(kEmptySha256));
  EXPECT_EQ(string_to_sign(scope, canonical_request(r)),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  const Credentials c{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "", "test"};
  EXPECT_EQ(authorization_header(r, scope, c),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4, S3GetObjectWithRange) {
  SigV4Request r;
  r.method = "GET";
  r.encoded_path = "/test.txt";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Range", "bytes=0-9"},
               {"x-amz-content-sha256", kEmptySha256},
               {"x-amz-date", "20130524T000000Z"}};
  r.payload_sha256 = kEmptySha256;
  const SigV4Scope scope{"20130524T000000Z", "us-east-1", "s3"};
  EXPECT_EQ(signed_header_names(r), "host;range;x-amz-content-sha256;x-amz-date");
  EXPECT_EQ(signature_of(authorization_header(r, scope, s3_example_credentials())),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, S3PutObjectWithEncodedKey) {
  const std::string body = "Welcome to Amazon S3.";
  SigV4Request r;
  r.method = "PUT";
  r.encoded_path = "/test%24file.text";
  r.payload_sha256 = sha256_hex(body);
  EXPECT_EQ(r.payload_sha256, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
               {"x-amz-date", "20130524T000000Z"},
               {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
               {"x-amz-content-sha256", r.payload_sha256}};
  const SigV4Scope scope{"20130524T000000Z", "us-east-1", "s3"};
  EXPECT_EQ(signature_of(authorization_header(r, scope, s3_example_credentials())),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4, S3QueryParametersWithAndWithoutValues) {
  SigV4Request r;
  r.method = "GET";
  r.encoded_path = "/";
  r.payload_sha256 = kEmptySha256;
  r.headers = {{"host", "examplebucket.s3.amazonaws.com"},
               {"x-amz-date", "20130524T000000Z"},
               {"x-amz-content-sha256", kEmptySha256}};
  const SigV4Scope scope{"20130524T000000Z", "us-east-1", "s3"};
  r.query = {{"lifecycle", ""}};
  EXPECT_EQ(signature_of(authorization_header(r, scope, s3_example_credentials())),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
  r.query = {{"prefix", "J"}, {"max-keys", "2"}};  // sorted by the signer
  EXPECT_EQ(signature_of(authorization_header(r, scope, s3_example_credentials())),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4, CanonicalFormsOfQueryAndHeaders) {
  EXPECT_EQ(canonical_query_string({{"prefix", "a b/c"}, {"list-type", "2"}, {"b", "x=y&z"}}),
            "b=x%3Dy%26z&list-type=2&prefix=a%20b%2Fc");
  EXPECT_EQ(canonical_query_string({{"k", "2"}, {"k", "1"}}), "k=1&k=2");
  SigV4Request r;
  r.method = "GET";
  r.encoded_path = "";
  r.payload_sha256 = "UNSIGNED-PAYLOAD";
  r.headers = {{"Host", "h"},
               {"X-Amz-Date", "20130524T000000Z"},
               {"My-Header", "  a   b  c "},
               {"my-header", "d"}};
  EXPECT_EQ(canonical_request(r),
            "GET\n/\n\nhost:h\nmy-header:a b c,d\nx-amz-date:20130524T000000Z\n\n"
            "host;my-header;x-amz-date\nUNSIGNED-PAYLOAD");
}

TEST(SigV4, RejectsMissingHostOrMalformedDate) {
  SigV4Request r;
  r.method = "GET";
  r.headers = {{"x-amz-date", "20130524T000000Z"}};
  EXPECT_THROW(canonical_request(r), Error);
  EXPECT_THROW(string_to_sign({"2013-05-24", "us-east-1", "s3"}, "x"), Error);
  EXPECT_EQ(amz_date_now().size(), 16u);
}

}  // namespace
}  // namespace zerotune::storage
