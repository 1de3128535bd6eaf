# SPDX-License-Identifier: Apache-2.0
# Builds a BPF C file into an object with clang, links it with bpftool and generates its
# skeleton header. The skeleton embeds the object, so binaries never look one up at run time.
#
#   xlb_bpf_skeleton(NAME balancer SOURCE balancer.bpf.c)
# defines target xlb_skel_<NAME> (an INTERFACE library): link it and #include
# "xlb/skel/<NAME>.skel.h".

find_program(XLB_BPF_CLANG NAMES clang-19 REQUIRED)
find_program(XLB_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

set(XLB_BPF_CFLAGS
    -target bpf -O2 -g -mcpu=v3
    # Keep calls on different maps at different instructions: the verifier inlines a map
    # lookup only where a call site sees one map, and clang would otherwise merge them.
    -mllvm -simplifycfg-sink-common=false
    -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
    -I${CMAKE_SOURCE_DIR}/bpf/include -I${CMAKE_SOURCE_DIR}/bpf
    -I/usr/include/${CMAKE_LIBRARY_ARCHITECTURE})

function(xlb_bpf_skeleton)
  cmake_parse_arguments(ARG "" "NAME;SOURCE" "" ${ARGN})
  set(src ${CMAKE_CURRENT_SOURCE_DIR}/${ARG_SOURCE})
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}.bpf.o)
  set(linked ${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}.linked.o)
  set(skel_dir ${XLB_GEN_DIR}/xlb/skel)
  set(skel ${skel_dir}/${ARG_NAME}.skel.h)

  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${XLB_BPF_CLANG} ${XLB_BPF_CFLAGS} -MD -MF ${obj}.d -c ${src} -o ${obj}
    DEPENDS ${src}
    DEPFILE ${obj}.d
    COMMENT "BPF ${ARG_SOURCE}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${skel_dir}
    COMMAND ${XLB_BPFTOOL} gen object ${linked} ${obj}
    COMMAND ${XLB_BPFTOOL} gen skeleton ${linked} name xlb_${ARG_NAME} > ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${ARG_NAME}.skel.h"
    VERBATIM)
  add_custom_target(xlb_skel_${ARG_NAME}_gen DEPENDS ${skel})
  add_library(xlb_skel_${ARG_NAME} INTERFACE)
  add_dependencies(xlb_skel_${ARG_NAME} xlb_skel_${ARG_NAME}_gen)
  target_include_directories(xlb_skel_${ARG_NAME} INTERFACE ${XLB_GEN_DIR})
  target_link_libraries(xlb_skel_${ARG_NAME} INTERFACE xlb_abi PkgConfig::LIBBPF)
endfunction()
