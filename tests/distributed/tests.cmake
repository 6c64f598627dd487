# ZeRO over MPI, end to end: 2-4 ranks under mpirun --oversubscribe on this machine.
add_test(NAME distributed.zero
         COMMAND ${ZT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/distributed/check_zero.py
                 --zerotune $<TARGET_FILE:zerotune> --workdir ${CMAKE_BINARY_DIR}/distributed/zero)
set_tests_properties(distributed.zero PROPERTIES LABELS "distributed;cli" TIMEOUT 1200)
