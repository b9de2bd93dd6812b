# The Debian package spec: it builds the .deb (tools/deb.sh), so it is one ctest entry of its
# own, labelled package (`ctest -L package`; `make test` runs it too), not one of the
# spec/*_spec.lua entries.
if(BUSTED AND NOT ORCH_SANITIZE) # the package does not depend on the sanitized build
  add_test(NAME package-deb
           COMMAND ${BUSTED} --lua=lua5.4 --cpath=${CMAKE_BINARY_DIR}/lib/?.so
                   spec/package/deb_spec.lua
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(package-deb PROPERTIES LABELS package ENVIRONMENT "${ORCH_BUSTED_ENV}"
                       TIMEOUT 600 RESOURCE_LOCK orch_deb_build)
endif()
