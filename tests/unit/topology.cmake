# Unit tests of topology/ (issue 5): hwloc loading, the pure binding planner against golden
# files for realistic node topologies, policy precedence and the plan/report output.
# Included from tests/CMakeLists.txt. No root, no Slurm; `topology_tests` runs in well under a
# second. To rewrite the golden files after an intended change:
#   SOCKER_UPDATE_GOLDEN=1 ./topology_tests --gtest_filter='Golden*'   (then review the diff)
find_package(GTest REQUIRED)
include(GoogleTest)
add_executable(topology_tests
  ${CMAKE_CURRENT_LIST_DIR}/test_topology_load.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_topology_placement.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_topology_golden.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_topology_policy.cpp)
target_link_libraries(topology_tests PRIVATE socker_topology GTest::gtest GTest::gtest_main)
target_compile_definitions(topology_tests PRIVATE
  SOCKER_TOPOLOGY_FIXTURES="${CMAKE_CURRENT_LIST_DIR}/../fixtures/topology")
gtest_discover_tests(topology_tests PROPERTIES LABELS unit)
