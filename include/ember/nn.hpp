// Neural networks: the Module base and state dicts (nn/module.hpp), the layers
// (nn/layers.hpp), torch's initializations (nn/init.hpp) and networks with random weights
// (nn/bayesian.hpp). The functions (relu, gelu, softmax, conv2d, ...) are in ember/ops.hpp.
#pragma once

#include "ember/nn/bayesian.hpp"
#include "ember/nn/init.hpp"
#include "ember/nn/layers.hpp"
#include "ember/nn/module.hpp"
