# SPDX-License-Identifier: Apache-2.0
# Small helpers so that every module and test is declared the same way.

# xlb_module(NAME core SOURCES ... DEPS ...): static library xlb_<NAME> with public headers
# under <module>/include (included as "xlb/<NAME>/...").
function(xlb_module)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_library(xlb_${ARG_NAME} STATIC ${ARG_SOURCES})
  target_include_directories(xlb_${ARG_NAME} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_link_libraries(xlb_${ARG_NAME} PUBLIC ${ARG_DEPS})
endfunction()

# xlb_test(NAME maglev_test LABEL unit SOURCES ... DEPS ... [TIMEOUT s]): a GoogleTest
# executable registered with ctest under the label (unit, bpf or e2e).
function(xlb_test)
  cmake_parse_arguments(ARG "" "NAME;LABEL;TIMEOUT" "SOURCES;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME})
  set_tests_properties(${ARG_NAME} PROPERTIES LABELS ${ARG_LABEL} TIMEOUT ${ARG_TIMEOUT})
endfunction()
