# libFuzzer targets for the parsers that take untrusted input (included from CMakeLists.txt when
# SOCKER_FUZZ is ON; build with clang, see scripts/fuzz, which also instruments socker_core with
# -fsanitize=fuzzer-no-link and turns SOCKER_SANITIZE on).
foreach(t image_json layer_tar image_import policy)
  add_executable(fuzz_${t} ${CMAKE_CURRENT_LIST_DIR}/fuzz_${t}.cpp)
  target_compile_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
  target_compile_features(fuzz_${t} PRIVATE cxx_std_20)
  target_link_libraries(fuzz_${t} PRIVATE socker_core)
endforeach()
