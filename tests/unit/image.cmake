# Image store unit tests; included from tests/CMakeLists.txt. No root needed (ownership checks
# are skipped and the opaque xattr is user.* when not root).
find_package(GTest REQUIRED)
include(GoogleTest)
add_executable(image_store_tests ${CMAKE_CURRENT_LIST_DIR}/test_image_store.cpp)
# The tests build tar fixtures with libarchive's writer.
target_link_libraries(image_store_tests PRIVATE socker_core socker_deps GTest::gtest GTest::gtest_main)
gtest_discover_tests(image_store_tests PROPERTIES LABELS unit)
