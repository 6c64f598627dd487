# Object storage: S3 and Hub clients against servers the checks start on loopback. s3rver comes
# from npm at the versions pinned in package-lock.json, installed into the build tree first.
# The sanitizer build compiles only the unit tests, so these run in the release build only.
if(NOT ZEROTUNE_SANITIZE)
  set(ZT_STORAGE_DIR ${CMAKE_CURRENT_LIST_DIR})
  set(ZT_STORAGE_NODE ${CMAKE_BINARY_DIR}/storage/node)
  add_test(NAME storage.npm_install
           COMMAND bash ${PROJECT_SOURCE_DIR}/tests/tools/npm_install.sh ${ZT_STORAGE_DIR}
                   ${ZT_STORAGE_NODE} s3rver)
  set_tests_properties(storage.npm_install PROPERTIES LABELS storage TIMEOUT 300
                       FIXTURES_SETUP storage_node)
  add_test(NAME storage.s3
           COMMAND ${ZT_PYTHON} ${ZT_STORAGE_DIR}/check_s3.py --zerotune $<TARGET_FILE:zerotune>
                   --workdir ${CMAKE_BINARY_DIR}/storage/s3 --node-dir ${ZT_STORAGE_NODE})
  add_test(NAME storage.hub
           COMMAND ${ZT_PYTHON} ${ZT_STORAGE_DIR}/check_hub.py --zerotune $<TARGET_FILE:zerotune>
                   --workdir ${CMAKE_BINARY_DIR}/storage/hub)
  add_test(NAME storage.train
           COMMAND ${ZT_PYTHON} ${ZT_STORAGE_DIR}/check_train_s3.py
                   --zerotune $<TARGET_FILE:zerotune> --workdir ${CMAKE_BINARY_DIR}/storage/train
                   --node-dir ${ZT_STORAGE_NODE})
  # PEFT adapters from s3:// and the Hub: merge, cache and training equal the local folder's.
  add_test(NAME storage.adapters
           COMMAND ${ZT_PYTHON} ${ZT_STORAGE_DIR}/check_adapter_sources.py
                   --zerotune $<TARGET_FILE:zerotune> --workdir ${CMAKE_BINARY_DIR}/storage/adapters
                   --node-dir ${ZT_STORAGE_NODE})
  set_tests_properties(storage.s3 storage.train storage.adapters PROPERTIES
                       FIXTURES_REQUIRED storage_node)
  set_tests_properties(storage.s3 storage.hub storage.train storage.adapters PROPERTIES
                       LABELS storage TIMEOUT 600
                       ENVIRONMENT "OMP_NUM_THREADS=2;OMP_WAIT_POLICY=PASSIVE")
endif()
