// The one header a user includes.
#pragma once

#include "ember/device.hpp"
#include "ember/distributions.hpp"
#include "ember/dtype.hpp"
#include "ember/error.hpp"
#include "ember/handlers.hpp"
#include "ember/linalg.hpp"
#include "ember/message.hpp"
#include "ember/nn/module.hpp"
#include "ember/ops.hpp"
#include "ember/param_store.hpp"
#include "ember/primitives.hpp"
#include "ember/shape.hpp"
#include "ember/tensor.hpp"
#include "ember/trace.hpp"
#include "ember/transforms.hpp"
#include "ember/version.hpp"
