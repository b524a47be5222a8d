// Data: readers for CSV, NumPy (.npy, .npz), safetensors and IDX (MNIST) files, mini-batch
// loading, and PNG images, image grids and line plots (ember::data). docs/data.md is the guide.
#pragma once

#include "ember/data/csv.hpp"
#include "ember/data/idx.hpp"
#include "ember/data/image.hpp"
#include "ember/data/loader.hpp"
#include "ember/data/npy.hpp"
#include "ember/data/plot.hpp"
#include "ember/data/safetensors.hpp"
