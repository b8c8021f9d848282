#pragma once
/// Events of the `admin` stream: operations on the server itself that auditors must see
/// (issue 20). Appended with expected version `any` to the one stream `admin`.
/// Catalog: docs/events.md.

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace atrium {

/// The stream every admin event is appended to.
inline constexpr std::string_view admin_stream = "admin";

/// An online backup was taken (`POST /v1/admin/backups`). `position`: every event at or
/// before it is in the backup; `chain_head` the hash of the event at `position` ("" for
/// an empty log); `size_bytes` the bytes of the files it uses; `master_key_included`
/// whether the vault's master key was copied beside it; `taken_by` the admin's user id.
struct admin_backup_taken {
  static constexpr std::string_view type = "admin.backup_taken";
  static constexpr int schema = 1;
  std::uint32_t backup_id = 0;
  std::uint64_t position = 0;
  std::string chain_head;
  std::uint64_t size_bytes = 0;
  bool master_key_included = false;
  std::string taken_by;
  std::string client_address;  ///< "ip:port" of the HTTP peer
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(admin_backup_taken, backup_id, position, chain_head, size_bytes, master_key_included,
                                   taken_by, client_address)

}  // namespace atrium
