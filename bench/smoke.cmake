# test_win_bench_smoke: ringipc-bench runs a few rows under wine (or on
# Windows) and prints them measured; no number is looked at.
#   cmake -DEMULATOR=<wine or empty> -DBENCH=<ringipc-bench.exe> -P smoke.cmake
# Rows: the named pipe (the baseline), the event ping-pong, ringipc
# adaptive (round trip and one-way) and its loan row (one-way only), at 64 B,
# one repetition of 20 ms.
# --only adaptive keeps the baselines beside it; --same-cpu leaves out the
# rows that spin, which a loaded machine need not pay for here.
execute_process(
  COMMAND ${EMULATOR} ${BENCH} --same-cpu --only "ringipc adaptive" --size 64 --repeat 1 --time 20
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
message("${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ringipc-bench exited with ${rc}:\n${err}")
endif()
set(rows "named pipe +64 +[0-9.]+" "event ping-pong +64 +[0-9.]+" "ringipc adaptive +64 +[0-9.]+"
    "ringipc adaptive loan +64 +[0-9]+")
if(EMULATOR)
  list(APPEND rows "Measured under wine")
endif()
foreach(row ${rows})
  if(NOT out MATCHES "${row}")
    message(FATAL_ERROR "no line matching '${row}' in the output")
  endif()
endforeach()
