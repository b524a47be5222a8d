// libFuzzer target: ParamStore::load on arbitrary bytes: the safetensors reader shared by
// parameter stores, nn state dicts and optimizer state, and the constraint metadata on top.
#include "ember/param_store.hpp"
#include "fuzz/fuzz_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return ember::fuzz::read_input(data, size, ".safetensors", [](const std::string& path) {
    ember::ParamStore store;
    store.load(path);
  });
}
