# G4_KERNEL_TESTS_ONLY: just base, quant and backend plus the CPU kernel tests (matmuls and ops against
# the ref backend), for cross builds where the rest of g4's dependencies are not installed for the target.
# GoogleTest is built from Debian's source package (googletest: /usr/src/googletest) with the target's
# compiler, since libgtest-dev ships host libraries only.
find_package(Threads REQUIRED)
foreach(lib base quant backend)
  add_subdirectory(${PROJECT_SOURCE_DIR}/src/${lib})
endforeach()

set(G4_GTEST_SOURCE /usr/src/googletest CACHE PATH "GoogleTest sources (Debian package googletest)")
if(NOT EXISTS ${G4_GTEST_SOURCE}/CMakeLists.txt)
  message(FATAL_ERROR "G4_KERNEL_TESTS_ONLY needs GoogleTest sources at ${G4_GTEST_SOURCE} (apt-get install googletest)")
endif()
set(BUILD_GMOCK OFF CACHE BOOL "" FORCE)
set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
add_subdirectory(${G4_GTEST_SOURCE} ${CMAKE_BINARY_DIR}/googletest EXCLUDE_FROM_ALL)

enable_testing()
add_executable(test_cpu_kernels ${PROJECT_SOURCE_DIR}/tests/backend_cpu/cpu_matmul_test.cc
                                ${PROJECT_SOURCE_DIR}/tests/backend_cpu/cpu_ops_test.cc
                                ${PROJECT_SOURCE_DIR}/tests/backend_cpu/cpu_pack_test.cc)
target_link_libraries(test_cpu_kernels PRIVATE g4_backend gtest gtest_main)
target_include_directories(test_cpu_kernels PRIVATE ${PROJECT_SOURCE_DIR}/tests)
add_test(NAME cpu_kernels COMMAND test_cpu_kernels)
