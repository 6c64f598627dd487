// tokenizer.json, the fast tokenizer of Hugging Face's `tokenizers` library (what vLLM, TGI and
// transformers' AutoTokenizer(use_fast=True) load), made from a Llama SentencePiece tokenizer.model
// plus the added tokens, as transformers' LlamaConverter writes it for Llama-2 (legacy=True):
//  - model: BPE (byte_fallback, fuse_unk, unk_token = trainer_spec.unk_piece) with vocab = the
//    pieces by id and the merges of sentencepiece_bpe_merges(); a Unigram tokenizer.model (which
//    `zerotune tokenizer train --model-type unigram` makes) becomes a Unigram model (unk_id 0,
//    byte_fallback), as the converter makes it. That one gives SentencePiece's ids except where
//    Viterbi paths tie on score (the two libraries break ties differently) and where text spells a
//    byte piece ("<0x41>"), which tokenizers' Unigram matches and SentencePiece never does;
//  - normalizer Sequence[Prepend("▁"), Replace(" ", "▁")], no pre-tokenizer: each text segment
//    between added tokens gets its own "▁", which is SentencePiece's dummy prefix per segment, the
//    way training encodes (data/tokenizer.h);
//  - decoder Sequence[Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0)];
//  - post_processor TemplateProcessing "<s> $A" (pair "<s> $A <s> $B"), the BOS that training
//    adds (transformers' LlamaTokenizerFast.update_post_processor with add_bos_token);
//  - added_tokens: the unk, bos and eos tokens and every added token, special, normalized false,
//    lstrip/rstrip false: the tokens training splits out of text before SentencePiece.
// Like the converter, it ignores the model's normalizer_spec: Llama-2's and the models
// `zerotune tokenizer train` writes use identity normalization with the dummy prefix and without
// whitespace folding, which is what the normalizer above reproduces.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "io/tokenizer_files.h"

namespace zerotune {

// The text of tokenizer.json for `files` (files.model_proto is parsed; files.added_tokens are
// checked as write_tokenizer_files checks them). `model_source` names tokenizer.model in errors;
// a malformed model, a WORD or CHAR model (which the converter refuses too) and an unk, bos or
// eos token that is neither a piece nor an added token are errors.
std::string make_tokenizer_json(const TokenizerFiles& files, const std::string& model_source);

// Reading and extending a tokenizer.json that a folder brought (Llama-3.x, Qwen2.5, Mistral):
// its vocabulary by id (model.vocab and added_tokens; "" for an unused id), checking only what
// the ids need.
std::vector<std::string> tokenizer_json_vocabulary(const std::string& json_text,
                                                   const std::string& source);
// `json_text` with `added` (token, id) appended to its "added_tokens" as transformers'
// add_tokens(special_tokens=True) saves them: special, normalized false, no strip, not
// single_word. The ids must follow the file's vocabulary in order (checked, naming `source`).
std::string tokenizer_json_with_added_tokens(
    const std::string& json_text, const std::vector<std::pair<std::string, int32_t>>& added,
    const std::string& source);

// The BPE merges LlamaConverter derives from a SentencePiece vocabulary (transformers'
// generate_merges): for every piece that is the concatenation of two pieces, one merge per split
// point (in code points), the splits of one piece in (left id, right id) order; then all of them
// ordered by the merged piece's score, higher first, ties by the left part's length in code points,
// longer first, then the right part's, and otherwise in that order (Python's stable sort).
// `vocab` carries the scores to order by: LlamaConverter sets those of ids 0-2 to 0.
std::vector<std::pair<std::string, std::string>> sentencepiece_bpe_merges(
    const std::vector<SentencePieceEntry>& vocab);

}  // namespace zerotune
