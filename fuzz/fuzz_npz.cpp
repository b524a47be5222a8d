// libFuzzer target: ember::data::read_npz on arbitrary bytes.
#include "ember/data/npy.hpp"
#include "fuzz/fuzz_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return ember::fuzz::read_input(data, size, ".npz",
                                 [](const std::string& path) { ember::data::read_npz(path); });
}
