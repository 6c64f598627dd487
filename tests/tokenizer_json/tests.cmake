# tokenizer.json of exported checkpoints, read by Hugging Face's tokenizers (the Rust library
# through its npm binding, pinned in package-lock.json and installed into the build tree by the
# check itself): ids equal `zerotune tokenize`'s, decode gives the text back. Skips (exit 77)
# only when npm is not installed. The sanitizer build compiles only the unit tests.
if(NOT ZEROTUNE_SANITIZE)
  add_test(NAME tokenizer_json.hf_tokenizers
           COMMAND ${ZT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/check_tokenizer_json.py
                   --zerotune $<TARGET_FILE:zerotune>
                   --workdir ${CMAKE_BINARY_DIR}/tokenizer_json/work
                   --node-dir ${CMAKE_BINARY_DIR}/tokenizer_json/node
                   --shared-data ${PROJECT_SOURCE_DIR}/../shared/data)
  set_tests_properties(tokenizer_json.hf_tokenizers PROPERTIES LABELS tokenizer TIMEOUT 600
                       SKIP_RETURN_CODE 77 RESOURCE_LOCK tokenizer_json_node
                       ENVIRONMENT "OMP_NUM_THREADS=2;OMP_WAIT_POLICY=PASSIVE")
endif()
