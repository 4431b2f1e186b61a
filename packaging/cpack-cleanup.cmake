# Run by CPack after the package is made (CPACK_POST_BUILD_SCRIPTS): the staging tree it
# installed into holds a setuid-root copy of the launcher, which must not stay in the build
# directory (a stale setuid binary outlives every fix of the installed one). The package
# itself, beside that tree, is copied out after this script.
file(GLOB_RECURSE staged LIST_DIRECTORIES false "${CPACK_TOPLEVEL_DIRECTORY}/*/usr/bin/socker-mpi")
foreach(f IN LISTS staged)
  string(REGEX REPLACE "/usr/bin/socker-mpi$" "" tree "${f}")
  file(REMOVE_RECURSE "${tree}")
endforeach()
