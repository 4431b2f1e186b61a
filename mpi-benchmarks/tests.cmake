# Correctness test of smpi-bench and mpi-hello-ring (runs them with mpirun -n 1..3, checks the
# CSV and that --validate catches a corrupted message).  Included from tests/CMakeLists.txt:
#   include(${CMAKE_SOURCE_DIR}/mpi-benchmarks/tests.cmake)
# Adds nothing when the programs were not built (no MPI found).  Run: ctest -L mpi
if(TARGET smpi-bench AND TARGET mpi-hello-ring)
  set(_bench_mpirun "${MPIEXEC_EXECUTABLE}")
  if(NOT _bench_mpirun)
    set(_bench_mpirun mpirun)
  endif()
  add_test(NAME bench_correctness
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/../tests/integration/bench_correctness.sh
            $<TARGET_FILE:smpi-bench> $<TARGET_FILE:mpi-hello-ring> ${_bench_mpirun})
  set_tests_properties(bench_correctness PROPERTIES
    LABELS "mpi"
    TIMEOUT 300
    PROCESSORS 2
    SKIP_RETURN_CODE 77)
  unset(_bench_mpirun)
endif()
