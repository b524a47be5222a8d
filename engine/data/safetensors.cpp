// The public safetensors reader and writer (ember/data/safetensors.hpp), over the format code
// the param store and optimizers use (engine/ppl/safetensors.hpp).
#include "ember/data/safetensors.hpp"

#include "ember/error.hpp"
#include "engine/ppl/safetensors.hpp"

namespace ember::data {

void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  for (const auto& [name, t] : tensors) {
    EMBER_CHECK(t.defined(), "write_safetensors: tensor '", name, "' is undefined (", path, ")");
  }
  detail::write_safetensors(path, detail::SafetensorsFile{tensors, metadata});
}

std::map<std::string, Tensor> read_safetensors(const std::string& path) {
  return detail::read_safetensors(path).tensors;
}

}  // namespace ember::data
