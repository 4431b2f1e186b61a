# libFuzzer targets for the parsers that take untrusted input (included from CMakeLists.txt when
# SOCKER_FUZZ is ON; build with clang, see scripts/fuzz, which also instruments the libraries with
# -fsanitize=fuzzer-no-link and turns SOCKER_SANITIZE on).
foreach(t image_json:socker_image layer_tar:socker_image image_import:socker_image policy:socker_app)
  string(REPLACE ":" ";" pair ${t})
  list(GET pair 0 name)
  list(GET pair 1 library)
  add_executable(fuzz_${name} ${CMAKE_CURRENT_LIST_DIR}/fuzz_${name}.cpp)
  target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  target_compile_features(fuzz_${name} PRIVATE cxx_std_20)
  target_link_libraries(fuzz_${name} PRIVATE ${library})
endforeach()
