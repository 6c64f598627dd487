// Downloads from a Hugging Face Hub (HF_ENDPOINT, default https://huggingface.co) over
// /<repo>/resolve/<revision>/<file>, with HF_TOKEN as a bearer token for gated or private repos.
// Downloads resume from a .partial file and are verified: LFS files by the sha256 the Hub sends
// as X-Linked-Etag, small files by their git blob id (ETag), both by size.
#pragma once

#include <string>
#include <vector>

#include "io/storage/http.h"
#include "io/storage/url.h"

namespace zerotune::storage {

// The files a Llama fine-tune reads, apart from the weight shards an index names. Pickled
// weights (.bin, .pt) are never fetched: loading them would execute code from the network.
const std::vector<std::string>& hub_model_files();
// True for names we refuse to download anywhere (pickles).
bool is_pickled_weights(const std::string& name);

class HubClient {
 public:
  HubClient(std::string endpoint, std::string token, RetryPolicy retry);
  static HubClient from_environment();

  enum class Found : uint8_t { yes, no };
  // Downloads `file` of `repo` to `path` (through `path`.partial). Returns Found::no on 404;
  // throws on other failures, naming the URL (401/403 say whether HF_TOKEN was set).
  Found download(const HubRepo& repo, const std::string& file, const std::string& path);

  std::string file_url(const HubRepo& repo, const std::string& file) const;
  const std::string& endpoint() const { return endpoint_; }

 private:
  std::string endpoint_, token_;
  RetryPolicy retry_;
};

}  // namespace zerotune::storage
