# `zerotune eval` end to end and accuracy in training (2 ranks under mpirun), on tiny models that
# zerotune makes itself.
add_test(NAME cli.eval
         COMMAND ${ZT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/eval/check_eval_cli.py
                 --zerotune $<TARGET_FILE:zerotune> --workdir ${CMAKE_BINARY_DIR}/cli/eval)
set_tests_properties(cli.eval PROPERTIES LABELS cli TIMEOUT 600
                     ENVIRONMENT "OMP_NUM_THREADS=2;OMP_WAIT_POLICY=PASSIVE")
