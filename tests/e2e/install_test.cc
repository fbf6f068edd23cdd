// cmake --install of this build tree into a temporary prefix: the binary in bin/ runs, the license and
// the docs land in share/doc/g4.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/run_command.h"
#include "util/temp_dir.h"

namespace g4 {
namespace {

namespace fs = std::filesystem;

TEST(Install, BinaryAndDocsGoToThePrefix) {
  testing_util::TempDir prefix;
  const auto r = testing_util::run_command(std::string(G4_CMAKE_COMMAND) + " --install " + G4_BUILD_DIR +
                                           " --prefix " + prefix.path() + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string bin = prefix.file("bin/g4");
  ASSERT_TRUE(fs::exists(bin)) << r.out;
  const auto v = testing_util::run_command(bin + " --version");
  EXPECT_EQ(v.status, 0);
  EXPECT_EQ(v.out.rfind("g4 ", 0), 0u) << v.out;
  for (const char* doc : {"LICENSE", "README.md", "DESIGN.md", "PERF.md"})
    EXPECT_TRUE(fs::exists(prefix.file(std::string("share/doc/g4/") + doc))) << doc << "\n" << r.out;
  std::ifstream f(prefix.file("share/doc/g4/LICENSE"));
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_NE(ss.str().find("Apache License"), std::string::npos);
  EXPECT_NE(ss.str().find("Version 2.0, January 2004"), std::string::npos);
}

}  // namespace
}  // namespace g4
