// What every fuzz target shares: the input written to a file, a reader called on it, and any
// outcome but success or an ember::IoError that names the file aborted, so libFuzzer reports it.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>

#include "ember/error.hpp"

namespace ember::fuzz {

// One file per process (libFuzzer's -fork and -jobs run several), rewritten for each input.
inline const std::string& input_path(const char* extension) {
  static const std::string path = [&] {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/ember_fuzz_" +
           std::to_string(::getpid()) + extension;
  }();
  return path;
}

[[noreturn]] inline void report(const char* what) {
  std::fprintf(stderr, "ember fuzz: %s\n", what);
  std::abort();
}

template <class Read>
int read_input(const std::uint8_t* data, std::size_t size, const char* extension, Read read) {
  const std::string& path = input_path(extension);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) report(("cannot write " + path).c_str());
  }
  try {
    read(path);
  } catch (const IoError& e) {
    if (std::string(e.what()).find(path) == std::string::npos) {
      report((std::string("an IoError that does not name the file: ") + e.what()).c_str());
    }
  } catch (const std::exception& e) {
    report((std::string("an exception other than IoError: ") + e.what()).c_str());
  } catch (...) {
    report("an exception that is not a std::exception");
  }
  return 0;
}

}  // namespace ember::fuzz
