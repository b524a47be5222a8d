// Engine-internal helpers of the probabilistic-programming layer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ember/message.hpp"
#include "ember/param_store.hpp"
#include "ember/tensor.hpp"

namespace ember::detail {

// The entry's constrained value: the leaf itself for real parameters, else the transform of
// the leaf (recorded, so gradients reach the leaf).
Tensor constrained_value(const ParamStore::Entry& entry);

// "plates a (size 3), b (size 4)" for error messages.
std::string describe_plates(const std::vector<PlateFrame>& frames);

// A constraint as text and back (param store files): "positive", "interval:0:1", ...
// Constraints with tensor bounds cannot be written (ValueError).
std::string constraint_to_string(const constraints::Constraint& c);
constraints::Constraint constraint_from_string(const std::string& s);

}  // namespace ember::detail
