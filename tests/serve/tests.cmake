# tests/serve: included at the end of the top-level CMakeLists.txt (after tests/ defined
# zerotune_tests). The unit tests here (*_test.cc) are compiled into zerotune_tests by tests/'s
# glob and need the server library.
target_link_libraries(zerotune_tests PRIVATE zerotune_serve)
