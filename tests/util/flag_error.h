// The check that a g4 command line fails as a bad flag must: exit status 1, one "g4: error: ..." line on
// standard error naming `needle`, nothing on standard output.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "util/run_g4.h"

namespace g4::testing_util {

inline void expect_flag_error(const std::string& args, const std::string& needle) {
  const G4Result o = run_g4(args);
  EXPECT_EQ(o.status, 1) << args << "\n" << o.err;
  EXPECT_EQ(o.err.rfind("g4: error: ", 0), 0u) << args << "\n" << o.err;
  EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << args << ": expected one line:\n" << o.err;
  EXPECT_NE(o.err.find(needle), std::string::npos) << args << ": expected '" << needle << "' in:\n" << o.err;
  EXPECT_EQ(o.out, "") << args;
}

}  // namespace g4::testing_util
