# The one way a test program is built and registered, for tests/ (cmocka)
# and tests/windows/ (plain programs under wine): each wraps it with its own
# support library.
#
# ripc_test_program(<name> SUPPORT <lib> SOURCES <files> [LABEL <labels>...]
#                   [EXTRA_LABELS <labels>...] [TIMEOUT <s>] [ARGS <args>]
#                   [LIBS <libs>] [ENVIRONMENT <VAR=value>...])
# LABEL defaults to unit and TIMEOUT to 120 s; EXTRA_LABELS are added to
# LABEL (the wrapper's own, e.g. windows). Exit code 77 means "skipped":
# the test prints "SKIP: <reason>" first.
function(ripc_test_program name)
  cmake_parse_arguments(T "" "TIMEOUT;SUPPORT" "SOURCES;ARGS;LIBS;LABEL;EXTRA_LABELS;ENVIRONMENT"
    ${ARGN})
  if(NOT T_LABEL)
    set(T_LABEL unit)
  endif()
  list(APPEND T_LABEL ${T_EXTRA_LABELS})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_SUPPORT} ${T_LIBS})
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABEL}" TIMEOUT ${T_TIMEOUT}
    SKIP_RETURN_CODE 77)
  if(T_ENVIRONMENT)
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "${T_ENVIRONMENT}")
  endif()
endfunction()
