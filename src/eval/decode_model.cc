#include "eval/decode_model.h"

#include "core/check.h"
#include "io/peft_adapter.h"
#include "io/storage/model_source.h"

namespace zerotune {

DecodeModel load_decode_model(const std::string& source, const std::string& adapter,
                          const std::string& special_token_path, Device device, DType dtype) {
  ZT_CHECK(device.is_cpu() || cuda_backend_built(),
           "--device cuda: this zerotune was built without the CUDA backend "
           "(scripts/build.sh --cuda builds build-cuda/zerotune)");
  ZT_CHECK(dtype == DType::f32 || (dtype == DType::bf16 && !device.is_cpu()), "--dtype ",
           dtype_name(dtype), " on ", device.name(),
           ": the CPU decodes in f32, a GPU in f32 or bf16");
  DecodeModel m;
  m.folder = storage::resolve_model_source(source);
  m.loaded = read_hf_folder(m.folder);
  if (!adapter.empty()) {
    apply_adapter(m.loaded.params, storage::resolve_adapter_source(adapter));
    m.loaded.config = m.loaded.params.config();  // grown for an adapter's added tokens
  }
  ZT_CHECK(m.loaded.tokenizer.has_value(), m.folder,
           " has no tokenizer.json or tokenizer.model; decoding needs the model's tokenizer");
  m.tokenizer.emplace(Tokenizer::from_files(*m.loaded.tokenizer));
  if (!special_token_path.empty()) {
    m.tokenizer->add_special_tokens(read_special_tokens_json(special_token_path));
  }
  const int64_t model_vocab = m.loaded.config.vocab_size;
  ZT_CHECK(m.tokenizer->vocab_size() <= model_vocab, "the tokenizer of ", m.folder, " has ",
           m.tokenizer->vocab_size(), " tokens but the model's vocabulary only ", model_vocab,
           " rows (pass the --special_token_path the model was trained with, and no other)");
  if (!device.is_cpu()) {
    m.device_params.emplace(m.loaded.params.placed(dtype, device));
    m.loaded.params = LlamaParams();  // the host copy is no longer needed
  }
  return m;
}

}  // namespace zerotune
