# What `cmake --install` (make install, make deb) puts beside the binary: the man pages built
# with scdoc, the shell completions, the systemd template unit, and the library as a plain Lua
# 5.4 module (core.so and lines.so on the C module path, the Lua files reachable from the Lua
# module path), so that `lua5.4 -e "require 'orch'"` works as well as the orch binary.

set(ORCH_BASH_COMPLETION_DIR "${CMAKE_INSTALL_DATADIR}/bash-completion/completions"
    CACHE STRING "Where the bash completion goes (relative to the prefix, or absolute)")
set(ORCH_ZSH_COMPLETION_DIR "${CMAKE_INSTALL_DATADIR}/zsh/site-functions"
    CACHE STRING "Where the zsh completion goes (Debian: share/zsh/vendor-completions)")
set(ORCH_SYSTEMD_UNIT_DIR "lib/systemd/system"
    CACHE STRING "Where orch@.service goes (a relative path is under the prefix)")
set(ORCH_UNIT_CONFDIR "/etc/orch" CACHE STRING "orch@NAME.service runs ORCH_UNIT_CONFDIR/NAME/main.lua")
set(ORCH_LUA_CMODULE_DIR "${CMAKE_INSTALL_LIBDIR}/lua/5.4"
    CACHE STRING "The Lua 5.4 C module directory that gets orch/core.so and orch/lines.so")
set(ORCH_LUA_MODULE_DIR "${CMAKE_INSTALL_DATADIR}/lua/5.4"
    CACHE STRING "The Lua 5.4 module directory that gets orch -> ../../orch/lua/orch")

# Man pages: build/man/orch.1 and build/man/orch-lua.7 (the version substituted).
find_program(SCDOC scdoc)
if(SCDOC)
  set(orch_man_outputs)
  foreach(page orch.1 orch-lua.7 orch-relay.1)
    set(out ${CMAKE_BINARY_DIR}/man/${page})
    add_custom_command(
      OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
      COMMAND sh -c "sed 's/@VERSION@/${PROJECT_VERSION}/' \"$1\" | \"$2\" >\"$3.tmp\" && mv \"$3.tmp\" \"$3\""
              sh ${CMAKE_SOURCE_DIR}/man/${page}.scd ${SCDOC} ${out}
      DEPENDS ${CMAKE_SOURCE_DIR}/man/${page}.scd
      COMMENT "scdoc man/${page}.scd" VERBATIM)
    list(APPEND orch_man_outputs ${out})
    string(REGEX MATCH "[0-9]$" section ${page})
    install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endforeach()
  add_custom_target(man ALL DEPENDS ${orch_man_outputs})
else()
  message(WARNING "scdoc not found: no man pages (make deps installs it)")
endif()

install(FILES ${CMAKE_SOURCE_DIR}/completions/orch.bash DESTINATION ${ORCH_BASH_COMPLETION_DIR}
        RENAME orch)
install(FILES ${CMAKE_SOURCE_DIR}/completions/_orch DESTINATION ${ORCH_ZSH_COMPLETION_DIR})

configure_file(${CMAKE_SOURCE_DIR}/systemd/orch@.service.in
               ${CMAKE_BINARY_DIR}/systemd/orch@.service @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/systemd/orch@.service DESTINATION ${ORCH_SYSTEMD_UNIT_DIR})

install(TARGETS orch_module orch_lines_module LIBRARY DESTINATION ${ORCH_LUA_CMODULE_DIR}/orch)
# A relative link, so the tree can be moved (DESTDIR, dpkg -x) and still resolve.
file(RELATIVE_PATH orch_lua_link_target
     ${CMAKE_INSTALL_PREFIX}/${ORCH_LUA_MODULE_DIR}
     ${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DATADIR}/orch/lua/orch)
install(CODE "
  set(dir \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${ORCH_LUA_MODULE_DIR}\")
  file(MAKE_DIRECTORY \"\${dir}\")
  file(REMOVE \"\${dir}/orch\")
  message(STATUS \"Installing: \${dir}/orch -> ${orch_lua_link_target}\")
  file(CREATE_LINK \"${orch_lua_link_target}\" \"\${dir}/orch\" SYMBOLIC)
")
