// libFuzzer target: ember::data::read_idx on arbitrary bytes (plain or gzip).
#include "ember/data/idx.hpp"
#include "fuzz/fuzz_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return ember::fuzz::read_input(data, size, ".idx",
                                 [](const std::string& path) { ember::data::read_idx(path); });
}
