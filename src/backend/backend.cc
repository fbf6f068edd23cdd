#include "backend/backend.h"

#include "base/error.h"

namespace g4 {

Tensor Tensor::view(std::vector<int64_t> new_shape) const {
  Tensor t = *this;
  t.shape = std::move(new_shape);
  G4_CHECK(t.numel() == numel(), "view changes the element count");
  return t;
}

}  // namespace g4
