// Fuzz target: the RFC 3339 parser of the API's time filters (`normalize_rfc3339`,
// adapters/http/wire.hpp). Properties: an accepted time normalizes to the
// stored-time form `YYYY-MM-DDTHH:MM:SS.ffffffZ` (27 bytes, years 0000-9999), and that
// output is accepted again and normalizes to itself.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "adapters/http/wire.hpp"

namespace {

[[noreturn]] void finding(const char* what, std::string_view in, const std::string& out) {
  std::fprintf(stderr, "==atrium-fuzz== FINDING: %s\n  input:  %.*s\n  output: %s\n", what, static_cast<int>(in.size()),
               in.data(), out.c_str());
  std::abort();
}

bool stored_form(const std::string& s) {
  if (s.size() != 27) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    switch (i) {
      case 4:
      case 7:
        if (c != '-') return false;
        break;
      case 10:
        if (c != 'T') return false;
        break;
      case 13:
      case 16:
        if (c != ':') return false;
        break;
      case 19:
        if (c != '.') return false;
        break;
      case 26:
        if (c != 'Z') return false;
        break;
      default:
        if (c < '0' || c > '9') return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto out = atrium::http_adapter::normalize_rfc3339(in);
  if (!out) return 0;
  if (!stored_form(*out)) finding("output is not in the stored-time form", in, *out);
  const auto again = atrium::http_adapter::normalize_rfc3339(*out);
  if (!again) finding("output is not accepted again", in, *out);
  if (*again != *out) finding("output does not normalize to itself", in, *again);
  return 0;
}
