# The Debian package socker-mpi_<version>_amd64.deb (cpack -G DEB, run by scripts/setup, which
# installs it with dpkg -i: every test runs on the packaged install).
#   /usr/bin/socker-mpi                          setuid root, 4755 (the launch path only)
#   /usr/bin/socker -> socker-mpi                Socker's commands (src/socker.hpp)
#   /usr/libexec/socker-mpi/socker-mpi-tools     root, 0755 (image commands, plan, doctor)
#   /usr/libexec/socker-mpi/socker-mpi-reaper    root, 0755, static (engine mode's first process)
#   /etc/socker-mpi/socker-mpi.conf              conffile: an edited config survives upgrades
#   /usr/share/man/man1/socker-mpi.1.gz          help2man from the CLI's own --help + docs/man/socker-mpi.h2m
#   /usr/share/man/man5/socker-mpi.conf.5.gz     packaging/conf2man from etc/socker-mpi.conf
#   /usr/share/bash-completion/completions/socker-mpi
#   /usr/share/doc/socker-mpi/                   README, SECURITY, docs/, examples/, copyright, changelog
include(GNUInstallDirs)

find_program(HELP2MAN help2man REQUIRED)
find_program(GZIP gzip REQUIRED)
set(man_dir ${PROJECT_BINARY_DIR}/man)
# socker-mpi(1): the CLI's --help (every option, as the program has it) and the written sections.
add_custom_command(OUTPUT ${man_dir}/socker-mpi.1.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${man_dir}
  COMMAND ${HELP2MAN} --no-info --section=1 --source=socker-mpi --help-option=--help-all
          --include=${PROJECT_SOURCE_DIR}/docs/man/socker-mpi.h2m --output=${man_dir}/socker-mpi.1 $<TARGET_FILE:socker-mpi>
  COMMAND ${GZIP} -9nf ${man_dir}/socker-mpi.1
  DEPENDS socker-mpi ${PROJECT_SOURCE_DIR}/docs/man/socker-mpi.h2m
  COMMENT "man page socker-mpi(1)")
# socker-mpi.conf(5): from the commented default config itself (packaging/conf2man).
find_package(Python3 REQUIRED COMPONENTS Interpreter)
add_custom_command(OUTPUT ${man_dir}/socker-mpi.conf.5.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${man_dir}
  COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/packaging/conf2man ${PROJECT_SOURCE_DIR}/etc/socker-mpi.conf
          ${PROJECT_VERSION} > ${man_dir}/socker-mpi.conf.5
  COMMAND ${GZIP} -9nf ${man_dir}/socker-mpi.conf.5
  DEPENDS ${PROJECT_SOURCE_DIR}/etc/socker-mpi.conf ${PROJECT_SOURCE_DIR}/packaging/conf2man
  COMMENT "man page socker-mpi.conf(5)")
add_custom_command(OUTPUT ${man_dir}/changelog.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${man_dir}
  COMMAND ${GZIP} -9nc ${PROJECT_SOURCE_DIR}/packaging/changelog > ${man_dir}/changelog.gz
  DEPENDS ${PROJECT_SOURCE_DIR}/packaging/changelog)
# socker(1): Socker's commands, written by hand.
add_custom_command(OUTPUT ${man_dir}/socker.1.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${man_dir}
  COMMAND ${GZIP} -9nc ${PROJECT_SOURCE_DIR}/docs/man/socker.1 > ${man_dir}/socker.1.gz
  DEPENDS ${PROJECT_SOURCE_DIR}/docs/man/socker.1)
add_custom_target(man ALL DEPENDS ${man_dir}/socker-mpi.1.gz ${man_dir}/socker.1.gz ${man_dir}/socker-mpi.conf.5.gz
  ${man_dir}/changelog.gz)

install(FILES ${man_dir}/socker-mpi.1.gz ${man_dir}/socker.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${man_dir}/socker-mpi.conf.5.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/socker-mpi.bash-completion
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME socker-mpi)
install(FILES ${PROJECT_SOURCE_DIR}/etc/socker-mpi.conf DESTINATION /etc/socker-mpi)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/lintian-overrides DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides
  RENAME socker-mpi)
set(doc_dir ${CMAKE_INSTALL_DATADIR}/doc/socker-mpi)
install(FILES README.md SECURITY.md packaging/copyright ${man_dir}/changelog.gz DESTINATION ${doc_dir})
install(DIRECTORY docs/ DESTINATION ${doc_dir}/docs PATTERN man EXCLUDE)
install(DIRECTORY examples/ DESTINATION ${doc_dir}/examples)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME socker-mpi)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "socker-mpi maintainers <maintainers@socker-mpi.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "container launcher for MPI jobs on HPC clusters")
set(CPACK_PACKAGE_DESCRIPTION "socker-mpi starts once per MPI rank (srun -n 64 socker-mpi IMAGE ./solver,
or under mpirun) and runs the rank in a container of a Docker/OCI image, as
the submitting user, inside the Slurm step's cgroups, bound to the CPUs and
memory Slurm gave the step, with the PMIx/PMI2 environment, /dev/shm and the
interconnect devices passed in. A small setuid-root launcher; no daemon.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # socker-mpi_<version>_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends from the binaries' shared libraries (dpkg-shlibdeps)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "slurm-client, slurmd")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "podman, skopeo, umoci")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/conffiles ${PROJECT_SOURCE_DIR}/packaging/postinst
  ${PROJECT_SOURCE_DIR}/packaging/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)  # maintainer scripts 0755, conffiles 0644
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})


set(CPACK_POST_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/packaging/cpack-cleanup.cmake)
include(CPack)
