// libFuzzer target: ember::data::read_csv on arbitrary bytes, with a header and inferred
// dtypes, then headerless with empty fields as NaN; a table read is also joined by to_tensor.
#include "ember/data/csv.hpp"
#include "fuzz/fuzz_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return ember::fuzz::read_input(data, size, ".csv", [](const std::string& path) {
    ember::data::read_csv(path).to_tensor();
    ember::data::read_csv(path, {.header = false, .missing = ember::data::MissingValues::NaN})
        .to_tensor();
  });
}
