// The one header a user includes.
#pragma once

#include "ember/device.hpp"
#include "ember/distributions.hpp"
#include "ember/dtype.hpp"
#include "ember/error.hpp"
#include "ember/linalg.hpp"
#include "ember/ops.hpp"
#include "ember/shape.hpp"
#include "ember/tensor.hpp"
#include "ember/version.hpp"
