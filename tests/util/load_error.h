// The message of the g4::Error that Model::load throws for a model directory on the ref backend, or ""
// when it loads: for tests that feed the loader damaged or hostile files.
#pragma once

#include <string>

#include "backend/backend.h"
#include "base/error.h"
#include "model/model.h"

namespace g4::testing_util {

inline std::string load_error(const std::string& dir) {
  auto be = make_backend("ref");
  try {
    Model::load(dir, *be);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace g4::testing_util
