#include "data/token_jsonl.h"

#include <fstream>

#include "core/check.h"
#include "core/json.h"

namespace zerotune {

static std::vector<int32_t> read_ids(const json::Value& row, const char* key,
                                     const std::string& where, int64_t vocab_size,
                                     bool allow_ignore) {
  const json::Value* v = row.find(key);
  ZT_CHECK(v, where, ": missing \"", key, "\"");
  const std::vector<json::Value>& items = v->as_array(str(where, ": \"", key, "\""));
  std::vector<int32_t> out;
  out.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const int64_t id = items[i].as_int64(str(where, ": \"", key, "\"[", i, "]"));
    const bool ok = (allow_ignore && id == -100) ||
                    (id >= 0 && (vocab_size <= 0 || id < vocab_size) && id < (int64_t{1} << 31));
    ZT_CHECK(ok, where, ": \"", key, "\"[", i, "] = ", id, " is outside the vocabulary [0, ",
             vocab_size, ")", allow_ignore ? " and not -100" : "");
    out.push_back(static_cast<int32_t>(id));
  }
  return out;
}

TokenRows read_token_jsonl(const std::string& path, int64_t vocab_size) {
  std::ifstream in(path, std::ios::binary);
  ZT_CHECK(in, path, ": cannot open");
  TokenRows rows;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = str(path, ":", line_no);
    const json::Value row = json::parse_line(line, path, line_no);
    ZT_CHECK(row.is_object(), where, ": expected a JSON object per line");
    std::vector<int32_t> ids = read_ids(row, "input_ids", where, vocab_size, false);
    std::vector<int32_t> labels =
        row.find("labels") ? read_ids(row, "labels", where, vocab_size, true) : ids;
    ZT_CHECK(!ids.empty(), where, ": \"input_ids\" is empty");
    ZT_CHECK(labels.size() == ids.size(), where, ": ", ids.size(), " input_ids but ", labels.size(),
             " labels");
    rows.input_ids.push_back(std::move(ids));
    rows.labels.push_back(std::move(labels));
  }
  ZT_CHECK(!rows.input_ids.empty(), path, ": no rows");
  return rows;
}

}  // namespace zerotune
