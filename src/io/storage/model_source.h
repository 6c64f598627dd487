// Where --model_name points: a local folder, s3://bucket/prefix, or a Hugging Face Hub id
// (owner/name[@revision]). Remote models are downloaded once per machine into a cache
// (ZEROTUNE_CACHE, default ~/.cache/zerotune): processes starting together take a file lock on
// the cache entry, the first downloads (resumably, verified), the others wait and reuse it.
#pragma once

#include <string>

namespace zerotune::storage {

std::string cache_root();  // ZEROTUNE_CACHE, else $HOME/.cache/zerotune

// The local folder holding the model `name`. A path that exists is returned as it is; a path
// that does not exist and is neither an s3:// URL nor a Hub id is an error that says so.
std::string resolve_model_source(const std::string& name);
// The same for a PEFT adapter (--adapter): a folder, s3:// prefix or Hub id holding
// adapter_config.json and adapter_model.safetensors.
std::string resolve_adapter_source(const std::string& name);

}  // namespace zerotune::storage
