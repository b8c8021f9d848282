// A main() for the libFuzzer targets in replay mode: runs `LLVMFuzzerTestOneInput` once
// on every file named on the command line (a directory: every regular file in it, in
// name order), the way `<target> -runs=0 DIR` does, so that the seed corpus and every
// crashing input kept in it are regression tests of the normal (g++) and sanitizer
// builds, without clang or libFuzzer. A target reports a finding by aborting.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  std::vector<std::filesystem::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      std::vector<std::filesystem::path> files;
      for (const auto& e : std::filesystem::directory_iterator(p)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
      std::sort(files.begin(), files.end());
      inputs.insert(inputs.end(), files.begin(), files.end());
    } else {
      inputs.push_back(p);
    }
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
    return 2;
  }
  // The stateful targets keep their store under ATRIUM_FUZZ_TMP: a temp dir of ours,
  // removed at the end.
  std::string tmp = (std::filesystem::temp_directory_path() / "atrium-replay-XXXXXX").string();
  if (::mkdtemp(tmp.data()) == nullptr) {
    std::perror("mkdtemp");
    return 2;
  }
  ::setenv("ATRIUM_FUZZ_TMP", tmp.c_str(), 1);
  for (const auto& p : inputs) {
    std::ifstream f(p, std::ios::binary);
    const std::string data{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
  }
  std::error_code ec;
  std::filesystem::remove_all(tmp, ec);
  std::printf("replayed %zu inputs\n", inputs.size());
  std::fflush(nullptr);
  // The stateful targets' world (actors, store) is never torn down, as under libFuzzer:
  // leave without running static destructors under its running threads.
  std::_Exit(0);
}
