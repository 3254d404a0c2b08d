# Write the C block of README.md that follows the marker line
# "<!-- MARKER -->" (default example_readme) to OUT, so that the README's
# examples are built (and the first run) by the tests
# (examples/CMakeLists.txt) and cannot drift from the API.
# cmake -DREADME=<README.md> -DOUT=<file.c> [-DMARKER=<name>] -P readme_extract.cmake

# Cut `text` at the first `what` in it: what follows `what` (skip 1) or
# what precedes it (skip 0); fail the build with `fail` when it is missing.
function(cut text what skip fail out)
  string(FIND "${text}" "${what}" at)
  if(at LESS 0)
    message(FATAL_ERROR "${README}: ${fail}")
  endif()
  if(skip)
    string(LENGTH "${what}" n)
    math(EXPR at "${at} + ${n}")
    string(SUBSTRING "${text}" ${at} -1 rest)
  else()
    string(SUBSTRING "${text}" 0 ${at} rest)
  endif()
  set(${out} "${rest}" PARENT_SCOPE)
endfunction()

if(NOT MARKER)
  set(MARKER example_readme)
endif()
file(READ "${README}" text)
cut("${text}" "<!-- ${MARKER} -->" 1 "no '<!-- ${MARKER} -->' marker" text)
cut("${text}" "```c\n" 1 "no ```c block after the ${MARKER} marker" text)
cut("${text}" "\n```" 0 "the ${MARKER} block is not closed" code)
file(WRITE "${OUT}" "/* Extracted from README.md by examples/readme_extract.cmake. */\n${code}\n")
