# Write the C block of a Markdown document that follows the marker line
# "<!-- MARKER -->" (default example_readme) to OUT, so that the examples
# of README.md and docs/ are built (and the README's run) by the tests
# (examples/CMakeLists.txt) and cannot drift from the API.
# cmake -DDOC=<file.md> -DOUT=<file.c> [-DMARKER=<name>] -P doc_extract.cmake

# Cut `text` at the first `what` in it: what follows `what` (skip 1) or
# what precedes it (skip 0); fail the build with `fail` when it is missing.
function(cut text what skip fail out)
  string(FIND "${text}" "${what}" at)
  if(at LESS 0)
    message(FATAL_ERROR "${DOC}: ${fail}")
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
file(READ "${DOC}" text)
cut("${text}" "<!-- ${MARKER} -->" 1 "no '<!-- ${MARKER} -->' marker" text)
cut("${text}" "```c\n" 1 "no ```c block after the ${MARKER} marker" text)
cut("${text}" "\n```" 0 "the ${MARKER} block is not closed" code)
get_filename_component(name "${DOC}" NAME)
file(WRITE "${OUT}" "/* Extracted from ${name} by examples/doc_extract.cmake. */\n${code}\n")
