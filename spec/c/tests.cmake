# C tests: each binary prints "ok N - name" lines and a closing "N passed, N failed" line; each
# also runs under valgrind memcheck as a second ctest entry.
find_program(VALGRIND valgrind)

function(orch_c_test name)
  add_executable(${name} ${ARGN})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/spec/c
                             ${CURL_INCLUDE_DIRS})
  target_link_libraries(${name} PRIVATE PkgConfig::LUA PkgConfig::UV ${ORCH_DL_LIBS})
  target_compile_definitions(${name} PRIVATE _GNU_SOURCE ORCH_VERSION="${PROJECT_VERSION}"
      ORCH_SOURCE_DIR="${CMAKE_SOURCE_DIR}" ORCH_BUILD_DIR="${CMAKE_BINARY_DIR}")
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME c-${name} COMMAND ${name} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  if(VALGRIND AND ORCH_VALGRIND AND NOT ORCH_SANITIZE)
    add_test(NAME valgrind-${name}
             COMMAND ${VALGRIND} --quiet --error-exitcode=1 --leak-check=full
                     --errors-for-leak-kinds=definite $<TARGET_FILE:${name}>
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  endif()
endfunction()

file(GLOB ORCH_C_TEST_FILES ${CMAKE_SOURCE_DIR}/spec/c/test_*.c)
list(FILTER ORCH_C_TEST_FILES EXCLUDE REGEX "/test_http_nocurl\\.c$")
foreach(file ${ORCH_C_TEST_FILES})
  get_filename_component(name ${file} NAME_WE)
  orch_c_test(${name} ${file} $<TARGET_OBJECTS:orch_core>)
endforeach()

# A tool for the specs (not a test): run a command with clone3 failing (seccomp).
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  add_executable(no_clone3 ${CMAKE_SOURCE_DIR}/spec/c/no_clone3.c)
  set_target_properties(no_clone3 PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
endif()

# http_get when libcurl cannot be loaded: the core compiled again, told to dlopen a library
# that does not exist (no runtime hook in the real build).
orch_c_test(test_http_nocurl ${CMAKE_SOURCE_DIR}/spec/c/test_http_nocurl.c ${ORCH_CORE_SOURCES})
target_compile_definitions(test_http_nocurl PRIVATE
    ORCH_LIBCURL_SONAME="liborch-test-no-such-curl.so.4")

# The busted suite, one ctest entry per spec file, against this build's core module.
find_program(BUSTED busted)
set(ORCH_BUSTED_ENV "ORCH_BIN=${CMAKE_BINARY_DIR}/bin/orch")
set(ORCH_BUSTED ${BUSTED} --lua=lua5.4)
if(ORCH_SANITIZE)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                  OUTPUT_VARIABLE ORCH_LIBASAN OUTPUT_STRIP_TRAILING_WHITESPACE)
  # libasan first for the instrumented core.so, then unpreload.so, which takes LD_PRELOAD out
  # of the environment again so that the specs' processes do not inherit it (see the file).
  # busted runs in lua5.4 directly (--ignore-lua): its launcher would re-exec lua5.4 without
  # the preload.
  add_library(orch_unpreload SHARED ${CMAKE_SOURCE_DIR}/spec/c/unpreload.c)
  set_target_properties(orch_unpreload PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  list(APPEND ORCH_BUSTED_ENV "LD_PRELOAD=${ORCH_LIBASAN}:$<TARGET_FILE:orch_unpreload>"
       "ORCH_ASAN_PRELOAD=${ORCH_LIBASAN}"
       "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1" "UBSAN_OPTIONS=halt_on_error=1")
  find_program(LUA54 lua5.4)
  set(ORCH_BUSTED ${LUA54} ${BUSTED} --ignore-lua)
endif()
file(GLOB ORCH_SPEC_FILES RELATIVE ${CMAKE_SOURCE_DIR} ${CMAKE_SOURCE_DIR}/spec/*_spec.lua)
foreach(spec ${ORCH_SPEC_FILES})
  get_filename_component(name ${spec} NAME_WE)
  add_test(NAME busted-${name}
           COMMAND ${ORCH_BUSTED} --cpath=${CMAKE_BINARY_DIR}/lib/?.so ${spec}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(busted-${name} PROPERTIES ENVIRONMENT "${ORCH_BUSTED_ENV}" TIMEOUT 600)
  # The fault specs check that no process of their fixtures is left anywhere on the machine,
  # by command line (chaos.lua's daemons are shared by faults_chaos and faults_limits): under
  # `ctest -j` they must not run at the same time as one another.
  if(name MATCHES "^faults_")
    set_tests_properties(busted-${name} PROPERTIES RESOURCE_LOCK orch_fault_fixtures)
  endif()
endforeach()

# The examples' own specs, as a user runs them: `orch test` on examples/ and the quickstart (the
# simulated world of orch.testing; busted runs inside the orch binary).
if(BUSTED)
  add_test(NAME orch-test-examples
           COMMAND ${CMAKE_BINARY_DIR}/bin/orch test examples examples/quickstart
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(orch-test-examples PROPERTIES TIMEOUT 120)
endif()

# The libFuzzer harnesses for 30 s (tools/fuzz_test.sh builds them with clang in its own build
# directory; skipped, with a message, when clang or libFuzzer is missing). Not under the
# sanitizer build: the harnesses are sanitized builds already.
if(NOT ORCH_SANITIZE)
  add_test(NAME fuzz-harnesses
           COMMAND ${CMAKE_SOURCE_DIR}/tools/fuzz_test.sh ${CMAKE_SOURCE_DIR}
                   ${CMAKE_BINARY_DIR}/fuzz-harnesses 30
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(fuzz-harnesses PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()

# Soak: the long runs of the fault specs (`it('... #soak')`: the 60 s chaos, the 1 GB flood).
# The entries above leave them out (.busted: exclude-tags = 'soak'); these run only them, with the
# label soak: `make soak` selects it, `make test` and `make sanitize` exclude it.
foreach(spec ${ORCH_SPEC_FILES})
  file(STRINGS ${CMAKE_SOURCE_DIR}/${spec} soak_tagged REGEX "it[(].*#soak")
  if(soak_tagged)
    get_filename_component(name ${spec} NAME_WE)
    add_test(NAME soak-${name}
             COMMAND ${ORCH_BUSTED} --cpath=${CMAKE_BINARY_DIR}/lib/?.so --tags=soak
                     --exclude-tags=none ${spec}
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(soak-${name} PROPERTIES LABELS soak ENVIRONMENT "${ORCH_BUSTED_ENV}"
                         TIMEOUT 1800 RESOURCE_LOCK orch_fault_fixtures)
  endif()
endforeach()
