// A conversation as a training example: {"messages": [...]} rendered with the model's chat
// template and tokenised, with labels on the assistant turns only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"

namespace zerotune {

struct ChatExample {
  std::vector<int32_t> ids;     // [T] the rendered conversation's tokens
  std::vector<int32_t> labels;  // [T] unshifted: the id on assistant tokens, kIgnoreIndex elsewhere
  bool truncated = false;       // longer than ctx_len and cut
};

// How labels are found: the conversation is rendered prefix by prefix, as transformers'
// apply_chat_template renders it (no BOS/EOS added beyond the template's). For the i-th message,
// when it is an assistant one, the tokens of render(messages[0, i), add_generation_prompt=true)
// are the prompt and those of render(messages[0, i]) the prompt plus the reply; the tokens the
// second adds beyond their common prefix with the first are the reply's (its content and the
// template's end-of-turn marker), and they get labels in the tokens of the whole conversation.
// The generation prompt (e.g. "<|start_header_id|>assistant<|end_header_id|>\n\n") stays
// unlabelled: the model is never asked to produce it. A template whose prefix renderings are not
// prefixes of the whole conversation is refused (the spans could not be placed).
// `where` (file:line) starts every error message. ctx_len > 0 cuts to the first ctx_len tokens.
ChatExample encode_chat_example(const ChatTemplate& chat, const Tokenizer& tokenizer,
                                const json::Value& messages, int64_t ctx_len,
                                const std::string& where);

}  // namespace zerotune
