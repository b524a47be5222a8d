// All distribution families (namespace ember::dist), constraints and random generators.
#pragma once

#include "ember/constraints.hpp"
#include "ember/distributions/continuous.hpp"
#include "ember/distributions/delta.hpp"
#include "ember/distributions/discrete.hpp"
#include "ember/distributions/distribution.hpp"
#include "ember/distributions/gamma.hpp"
#include "ember/distributions/low_rank_multivariate_normal.hpp"
#include "ember/distributions/multivariate_normal.hpp"
#include "ember/distributions/transformed.hpp"
#include "ember/distributions/unit.hpp"
#include "ember/random.hpp"
