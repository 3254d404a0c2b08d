# Write the C block of README.md that follows the marker line
# "<!-- example_readme -->" to OUT, so that the README's example is built and
# run by the tests (examples/CMakeLists.txt) and cannot drift from the API.
# cmake -DREADME=<README.md> -DOUT=<file.c> -P readme_extract.cmake
file(READ "${README}" text)
string(FIND "${text}" "<!-- example_readme -->" at)
if(at LESS 0)
  message(FATAL_ERROR "${README}: no '<!-- example_readme -->' marker")
endif()
string(SUBSTRING "${text}" ${at} -1 text)
string(FIND "${text}" "```c\n" open)
if(open LESS 0)
  message(FATAL_ERROR "${README}: no ```c block after the example_readme marker")
endif()
math(EXPR open "${open} + 5")
string(SUBSTRING "${text}" ${open} -1 text)
string(FIND "${text}" "\n```" close)
if(close LESS 0)
  message(FATAL_ERROR "${README}: the example_readme block is not closed")
endif()
math(EXPR close "${close} + 1")
string(SUBSTRING "${text}" 0 ${close} code)
file(WRITE "${OUT}" "/* Extracted from README.md by examples/readme_extract.cmake. */\n${code}")
