// All distribution families (namespace ember::dist), constraints and random generators.
#pragma once

#include "ember/constraints.hpp"
#include "ember/distributions/distribution.hpp"
#include "ember/distributions/normal.hpp"
#include "ember/random.hpp"
