#include "data/chat_example.h"

#include <algorithm>

#include "core/check.h"
#include "core/token_batch.h"

namespace zerotune {
namespace {

// Messages [0, n) of `messages` as a JSON array.
json::Value first_messages(const json::Value& messages, size_t n) {
  json::Value out = json::Value::array();
  for (size_t i = 0; i < n; ++i) out.push_back(messages.items()[i]);
  return out;
}

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  const size_t n = std::min(a.size(), b.size());
  return static_cast<size_t>(
      std::mismatch(a.begin(), a.begin() + static_cast<long>(n), b.begin()).first - a.begin());
}

void check_messages(const json::Value& messages, const std::string& where) {
  ZT_CHECK(messages.is_array() && !messages.items().empty(), where,
           ": \"messages\" must be a non-empty list of {\"role\", \"content\"} objects");
  bool any_assistant = false;
  for (size_t i = 0; i < messages.items().size(); ++i) {
    const json::Value& m = messages.items()[i];
    ZT_CHECK(m.is_object(), where, ": messages[", i, "] must be an object");
    const json::Value* role = m.find("role");
    ZT_CHECK(role && role->is_string(), where, ": messages[", i, "] needs a string \"role\"");
    any_assistant = any_assistant || role->as_string("role") == "assistant";
  }
  ZT_CHECK(any_assistant, where,
           ": no \"assistant\" message; the loss is on assistant turns only, so this row would "
           "teach nothing");
}

}  // namespace

ChatExample encode_chat_example(const ChatTemplate& chat, const Tokenizer& tokenizer,
                                const json::Value& messages, int64_t ctx_len,
                                const std::string& where) {
  check_messages(messages, where);
  const json::Value none;
  auto tokens_of = [&](size_t n, bool generation_prompt) {
    try {
      return tokenizer.encode(chat.render(first_messages(messages, n), generation_prompt, none));
    } catch (const std::exception& e) {
      fail(str(where, ": chat template ", chat.origin(), ": ", e.what()));
    }
  };
  const size_t count = messages.items().size();
  ChatExample ex;
  ex.ids = tokens_of(count, false);
  ex.labels.assign(ex.ids.size(), kIgnoreIndex);
  for (size_t i = 0; i < count; ++i) {
    if (messages.items()[i].find("role")->as_string("role") != "assistant") continue;
    const std::vector<int32_t> prompt = tokens_of(i, true);
    const std::vector<int32_t> replied = tokens_of(i + 1, false);
    ZT_CHECK(common_prefix(replied, ex.ids) == replied.size(), where, ": chat template ",
             chat.origin(), " renders messages[0..", i,
             "] differently inside the whole conversation; cannot place the assistant turn");
    for (size_t t = common_prefix(prompt, replied); t < replied.size(); ++t) {
      ex.labels[t] = ex.ids[t];
    }
  }
  if (ctx_len > 0 && static_cast<int64_t>(ex.ids.size()) > ctx_len) {
    ex.ids.resize(static_cast<size_t>(ctx_len));
    ex.labels.resize(static_cast<size_t>(ctx_len));
    ex.truncated = true;
  }
  return ex;
}

}  // namespace zerotune
