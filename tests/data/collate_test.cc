#include "data/collate.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/check.h"

namespace zerotune {
namespace {

using Rows = std::vector<std::vector<int32_t>>;
constexpr int32_t kBos = 1, kEos = 2, kPad = 0;

std::vector<int32_t> column(const Buffer& b) {
  const int32_t* p = b.view().ptr<int32_t>();
  return std::vector<int32_t>(p, p + b.numel());
}

std::string collate_error(const Rows& rows, int64_t ctx_len) {
  try {
    collate(rows, kPad, ctx_len);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error";
  return "";
}

TEST(Collate, PadsToCtxLen) {
  const Rows examples = {{kBos, 10, 11, kEos}, {kBos, 12, kEos}};
  const PaddedRows rows = pad_examples(examples, kPad, 6);
  EXPECT_EQ(rows.input_ids,
            (Rows{{kBos, 10, 11, kEos, kPad, kPad}, {kBos, 12, kEos, kPad, kPad, kPad}}));
  EXPECT_EQ(rows.labels,
            (Rows{{kBos, 10, 11, kEos, -100, -100}, {kBos, 12, kEos, -100, -100, -100}}));

  const TokenBatch batch = collate(examples, kPad, 6);
  EXPECT_EQ(batch.batch, 2);
  EXPECT_EQ(batch.seq_len, 6);
  EXPECT_EQ(column(batch.ids), (std::vector<int32_t>{kBos, 10, 11, kEos, kPad, kPad, kBos, 12, kEos,
                                                     kPad, kPad, kPad}));
  // HF shift: position t predicts labels[t + 1]; the last position predicts nothing.
  EXPECT_EQ(column(batch.targets), (std::vector<int32_t>{10, 11, kEos, -100, -100, -100, 12, kEos,
                                                         -100, -100, -100, -100}));
  EXPECT_EQ(column(batch.positions), (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(batch.count_targets(), 3 + 2);
}

TEST(Collate, PadsToLongest) {
  const Rows examples = {{kBos, 10, kEos}, {kBos, 12, 13, 14, kEos}};
  const PaddedRows rows = pad_examples(examples, kPad, 512, PadMode::to_longest);
  EXPECT_EQ(rows.input_ids, (Rows{{kBos, 10, kEos, kPad, kPad}, {kBos, 12, 13, 14, kEos}}));
  EXPECT_EQ(rows.labels, (Rows{{kBos, 10, kEos, -100, -100}, {kBos, 12, 13, 14, kEos}}));
  const TokenBatch batch = collate(examples, kPad, 512, PadMode::to_longest);
  EXPECT_EQ(batch.seq_len, 5);
  EXPECT_EQ(column(batch.targets),
            (std::vector<int32_t>{10, kEos, -100, -100, -100, 12, 13, 14, kEos, -100}));
}

// Llama pads with </s>: the example's own </s> must stay a target, only padding is ignored.
TEST(Collate, PadEqualToEosKeepsTheRealEosLabel) {
  const Rows examples = {{kBos, 10, kEos}, {kBos, 12, kEos, kEos}};  // a row may end "</s></s>"
  const PaddedRows rows = pad_examples(examples, kEos, 5);
  EXPECT_EQ(rows.input_ids, (Rows{{kBos, 10, kEos, kEos, kEos}, {kBos, 12, kEos, kEos, kEos}}));
  EXPECT_EQ(rows.labels, (Rows{{kBos, 10, kEos, -100, -100}, {kBos, 12, kEos, kEos, -100}}));
  const TokenBatch batch = collate(examples, kEos, 5);
  EXPECT_EQ(column(batch.targets),
            (std::vector<int32_t>{10, kEos, -100, -100, -100, 12, kEos, kEos, -100, -100}));
  EXPECT_EQ(batch.count_targets(), 2 + 3);
}

TEST(Collate, FullLengthRowHasNoPadding) {
  const Rows examples = {{kBos, 5, 6, kEos}};
  for (PadMode mode : {PadMode::to_ctx_len, PadMode::to_longest}) {
    const PaddedRows rows = pad_examples(examples, kPad, 4, mode);
    EXPECT_EQ(rows.input_ids, examples);
    EXPECT_EQ(rows.labels, examples);
  }
}

TEST(Collate, Errors) {
  EXPECT_NE(collate_error({}, 8).find("collate: empty batch"), std::string::npos);
  const std::string too_long = collate_error({{kBos, kEos}, {kBos, 3, 4, 5, kEos}}, 4);
  EXPECT_NE(too_long.find("example 1 has 5 tokens but ctx_len is 4"), std::string::npos)
      << too_long;
  EXPECT_NE(collate_error({{kBos}, {}}, 4).find("example 1 is empty"), std::string::npos);
  EXPECT_NE(collate_error({{kBos, -100}}, 4).find("has id -100 at position 1"), std::string::npos);
  EXPECT_NE(collate_error({{kBos}}, 0).find("ctx_len must be positive"), std::string::npos);
  EXPECT_THROW(pad_examples({{kBos}}, -1, 4), Error);
}

}  // namespace
}  // namespace zerotune
