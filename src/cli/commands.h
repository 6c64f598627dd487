#pragma once

namespace zerotune {

// Each command parses argv[first..argc) and returns the process exit code.
int cmd_debug(int argc, char** argv, int first);
int cmd_bench(int argc, char** argv, int first);
int cmd_init(int argc, char** argv, int first);
int cmd_train(int argc, char** argv, int first);
int cmd_generate(int argc, char** argv, int first);
int cmd_data(int argc, char** argv, int first);
int cmd_tokenize(int argc, char** argv, int first);
int cmd_tokenizer(int argc, char** argv, int first);
int cmd_storage(int argc, char** argv, int first);
int cmd_serve(int argc, char** argv, int first);
int cmd_merge(int argc, char** argv, int first);
int cmd_eval(int argc, char** argv, int first);
int cmd_report(int argc, char** argv, int first);

}  // namespace zerotune
