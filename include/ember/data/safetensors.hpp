// Named tensors in the safetensors format, which Python's safetensors library reads
// (safetensors.torch.load_file / safetensors.numpy.load_file) and writes: draws from
// Predictive, posterior samples, any map of tensors.
//
//   data::write_safetensors("draws.safetensors", {draws.begin(), draws.end()});
#pragma once

#include <map>
#include <string>

#include "ember/tensor.hpp"

namespace ember::data {

// Writes the tensors (float32, float64, int64 or bool; any device, copied to the host) by
// name, atomically: beside `path`, then renamed onto it. `metadata` goes in the header's
// "__metadata__".
void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});
// Reads every tensor of a safetensors file onto the CPU; an IoError names the file and what
// is wrong with it.
std::map<std::string, Tensor> read_safetensors(const std::string& path);

}  // namespace ember::data
