# tokenizer.json reading against Hugging Face's tokenizers (the Rust library through its npm
# binding, the package pinned by tests/tokenizer_json and installed into the same build folder):
# id for id on the torture set and synthetic GSM8K rows for Llama-3.1 and Mistral (../shared/data;
# SKIP lines when absent) and for small tokenizer.json files the check writes (Qwen2.5-style and
# one with the other supported components); added tokens and the exported folder. Skips (exit 77)
# only when npm is not installed. The sanitizer build compiles only the unit tests.
if(NOT ZEROTUNE_SANITIZE)
  add_test(NAME tokenizers.hf_tokenizers
           COMMAND ${ZT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/check_hf_tokenizers.py
                   --zerotune $<TARGET_FILE:zerotune>
                   --tokenizer-bench $<TARGET_FILE:tokenizer_bench>
                   --workdir ${CMAKE_BINARY_DIR}/tokenizers/work
                   --node-dir ${CMAKE_BINARY_DIR}/tokenizer_json/node
                   --shared-data ${PROJECT_SOURCE_DIR}/../shared/data)
  set_tests_properties(tokenizers.hf_tokenizers PROPERTIES LABELS tokenizer TIMEOUT 900
                       SKIP_RETURN_CODE 77 RESOURCE_LOCK tokenizer_json_node
                       ENVIRONMENT "OMP_NUM_THREADS=2;OMP_WAIT_POLICY=PASSIVE")
endif()
