# ZeRO over MPI, end to end: 2-4 ranks under mpirun --oversubscribe on this machine.
add_test(NAME dist.zero
         COMMAND ${ZT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/dist/check_zero.py
                 --zerotune $<TARGET_FILE:zerotune> --workdir ${CMAKE_BINARY_DIR}/dist/zero)
set_tests_properties(dist.zero PROPERTIES LABELS "dist;cli" TIMEOUT 1200)
