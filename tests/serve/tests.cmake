# tests/serve: included at the end of the top-level CMakeLists.txt, once tests/ has defined
# zerotune_tests. The unit tests here (*_test.cc) are compiled into zerotune_tests by tests/'s
# glob and need the server library.
target_link_libraries(zerotune_tests PRIVATE zerotune_serve)

# End to end on loopback with the official OpenAI client (npm `openai` at the version pinned in
# package-lock.json, installed into the build tree first). The sanitizer build compiles only the
# unit tests, so these run in the release build only.
if(NOT ZEROTUNE_SANITIZE)
  set(ZT_SERVE_DIR ${CMAKE_CURRENT_LIST_DIR})
  set(ZT_SERVE_NODE ${CMAKE_BINARY_DIR}/serve/node)
  add_test(NAME serve.npm_install
           COMMAND bash ${PROJECT_SOURCE_DIR}/tests/tools/npm_install.sh ${ZT_SERVE_DIR}
                   ${ZT_SERVE_NODE} openai)
  set_tests_properties(serve.npm_install PROPERTIES LABELS serve TIMEOUT 300
                       FIXTURES_SETUP serve_node)
  add_test(NAME serve.api
           COMMAND /usr/bin/python3 ${ZT_SERVE_DIR}/check_serve.py --zerotune $<TARGET_FILE:zerotune>
                   --workdir ${CMAKE_BINARY_DIR}/serve/api --node-dir ${ZT_SERVE_NODE})
  set_tests_properties(serve.api PROPERTIES LABELS serve TIMEOUT 900 FIXTURES_REQUIRED serve_node
                       ENVIRONMENT "OMP_NUM_THREADS=2;OMP_WAIT_POLICY=PASSIVE")
  # --adapter: one adapter and several over one base, against `generate` of merged folders.
  add_test(NAME serve.adapters
           COMMAND /usr/bin/python3 ${ZT_SERVE_DIR}/check_serve_adapters.py
                   --zerotune $<TARGET_FILE:zerotune> --workdir ${CMAKE_BINARY_DIR}/serve/adapters
                   --node-dir ${ZT_SERVE_NODE})
  set_tests_properties(serve.adapters PROPERTIES LABELS serve TIMEOUT 300
                       FIXTURES_REQUIRED serve_node
                       ENVIRONMENT "OMP_NUM_THREADS=2;OMP_WAIT_POLICY=PASSIVE")
endif()
