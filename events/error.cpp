#include "events/error.hpp"

namespace atrium {

std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::invalid_argument:
      return "invalid_argument";
    case errc::unauthenticated:
      return "unauthenticated";
    case errc::forbidden:
      return "forbidden";
    case errc::not_found:
      return "not_found";
    case errc::version_conflict:
      return "version_conflict";
    case errc::already_exists:
      return "already_exists";
    case errc::failed_precondition:
      return "failed_precondition";
    case errc::precondition_required:
      return "precondition_required";
    case errc::payload_too_large:
      return "payload_too_large";
    case errc::gone:
      return "gone";
    case errc::unavailable:
      return "unavailable";
    case errc::internal:
      return "internal";
  }
  return "internal";
}

}  // namespace atrium
