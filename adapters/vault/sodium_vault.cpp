#include "adapters/vault/sodium_vault.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace atrium::vault_adapter {
namespace {

namespace fs = std::filesystem;

static_assert(secret_key::size == crypto_kdf_KEYBYTES);
static_assert(secret_key::size == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(secret_key::size >= crypto_generichash_KEYBYTES_MIN &&
              secret_key::size <= crypto_generichash_KEYBYTES_MAX);

constexpr unsigned char k_format_v1 = 0x01;
constexpr std::size_t k_nonce_bytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;  // 24
constexpr std::size_t k_tag_bytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;       // 16
constexpr const char* k_kdf_context = "atriumvt";
constexpr std::uint64_t k_encryption_subkey = 1;
constexpr std::uint64_t k_fingerprint_subkey = 2;
constexpr std::size_t k_ref_random_bytes = 16;
constexpr std::size_t k_fingerprint_hex = 32;
constexpr const char* k_master_key_name = "master.key";
// Longest key file worth reading: 64 hex chars and "\r\n".
constexpr std::size_t k_key_file_max = 66;

const unsigned char* bytes_of(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

std::string to_hex(const unsigned char* p, std::size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), p, n);
  out.pop_back();
  return out;
}

/// Wipes a string's bytes (its capacity is not reallocated by the caller afterwards).
void wipe(std::string& s) {
  if (!s.empty()) sodium_memzero(s.data(), s.size());
  s.clear();
}

std::string errno_text(int e) { return std::strerror(e); }

/// A file descriptor closed on scope exit.
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

std::unexpected<error> malformed_key_file(const fs::path& file, std::size_t size) {
  const auto length = size > k_key_file_max ? "more than " + std::to_string(k_key_file_max) : std::to_string(size);
  return fail(errc::invalid_argument, "master key file " + file.string() +
                                          " must hold 32 raw bytes or 64 hex characters (optionally followed by a "
                                          "newline); it holds " +
                                          length + " bytes that are neither");
}

/// Parses key file content: 32 raw bytes, or 64 hex chars and an optional `\n` or
/// `\r\n`, straight into guarded memory.
result<master_key> parse_key(std::span<const unsigned char> content, const fs::path& file) {
  if (content.size() == secret_key::size) return secret_key::from_bytes(content);
  std::size_t hex_len = content.size();
  if (hex_len > 0 && content[hex_len - 1] == '\n') --hex_len;
  if (hex_len > 0 && content[hex_len - 1] == '\r' && hex_len + 1 == content.size()) --hex_len;
  const auto malformed = [&] { return malformed_key_file(file, content.size()); };
  if (hex_len != 2 * secret_key::size) return malformed();
  auto key = secret_key::from_hex(std::string_view(reinterpret_cast<const char*>(content.data()), hex_len));
  if (!key && key.error().code == errc::invalid_argument) return malformed();
  return key;
}

/// Reads at most k_key_file_max + 1 bytes of an open file into a stack buffer that is
/// wiped afterwards, and parses them.
result<master_key> read_key(int fd, const fs::path& file) {
  std::array<unsigned char, k_key_file_max + 1> buf{};
  std::size_t n = 0;
  while (n < buf.size()) {
    const ssize_t r = ::read(fd, buf.data() + n, buf.size() - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const int e = errno;
      sodium_memzero(buf.data(), buf.size());
      return fail(errc::unavailable, "cannot read master key file " + file.string() + ": " + errno_text(e));
    }
    if (r == 0) break;
    n += static_cast<std::size_t>(r);
  }
  result<master_key> key = n > k_key_file_max ? malformed_key_file(file, n) : parse_key(std::span(buf.data(), n), file);
  sodium_memzero(buf.data(), buf.size());
  return key;
}

result<void> fsync_dir(const fs::path& dir) {
  fd_guard d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0 || ::fsync(d.fd) != 0) {
    return fail(errc::unavailable, "cannot fsync directory " + dir.string() + ": " + errno_text(errno));
  }
  return {};
}

/// Creates `file` with a new random key; `already_exists` if another process won the race.
result<master_key> generate_key_file(const fs::path& file) {
  fd_guard f{::open(file.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600)};
  if (f.fd < 0) {
    const int e = errno;
    if (e == EEXIST) return fail(errc::already_exists, "master key file appeared meanwhile");
    return fail(errc::unavailable, "cannot create master key file " + file.string() + ": " + errno_text(e));
  }
  auto key = secret_key::generate();
  if (!key) return key;
  std::array<char, 2 * secret_key::size + 2> hex{};  // 64 hex chars, '\n', NUL
  sodium_bin2hex(hex.data(), hex.size() - 1, key->data(), secret_key::size);
  hex[2 * secret_key::size] = '\n';
  std::size_t written = 0;
  const std::size_t total = 2 * secret_key::size + 1;
  int write_errno = 0;
  while (written < total) {
    const ssize_t w = ::write(f.fd, hex.data() + written, total - written);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      write_errno = w < 0 ? errno : EIO;
      break;
    }
    written += static_cast<std::size_t>(w);
  }
  sodium_memzero(hex.data(), hex.size());
  if (write_errno == 0 && ::fsync(f.fd) != 0) write_errno = errno;
  if (write_errno != 0) {
    // A partial key file would make every later start fail: remove it.
    ::unlink(file.c_str());
    return fail(errc::unavailable, "cannot write master key file " + file.string() + ": " + errno_text(write_errno));
  }
  if (auto synced = fsync_dir(file.parent_path()); !synced) return std::unexpected(synced.error());
  return key;
}

result<master_key> read_existing_key_file(const fs::path& file, bool check_mode) {
  fd_guard f{::open(file.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) {
    const int e = errno;
    return fail(e == ENOENT ? errc::not_found : errc::unavailable,
                "cannot open master key file " + file.string() + ": " + errno_text(e));
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) {
    return fail(errc::unavailable, "cannot stat master key file " + file.string() + ": " + errno_text(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(errc::invalid_argument, "master key file " + file.string() + " is not a regular file");
  }
  if (check_mode && (st.st_mode & 077) != 0) {
    return fail(errc::failed_precondition, "master key file must be mode 0600: " + file.string(),
                {{"file", file.string()}});
  }
  return read_key(f.fd, file);
}

}  // namespace

result<secret_key> secret_key::from_bytes(std::span<const unsigned char> bytes) {
  if (bytes.size() != size) {
    return fail(errc::invalid_argument, "a key must be " + std::to_string(size) + " bytes");
  }
  if (sodium_init() < 0) return fail(errc::unavailable, "libsodium failed to initialize");
  auto* p = static_cast<unsigned char*>(sodium_malloc(size));
  if (p == nullptr) return fail(errc::unavailable, "cannot allocate guarded memory for a key");
  std::memcpy(p, bytes.data(), size);
  return secret_key(p);
}

result<secret_key> secret_key::from_hex(std::string_view hex) {
  if (hex.size() != 2 * size) return fail(errc::invalid_argument, "a hex key must be 64 characters");
  auto key = from_bytes(std::array<unsigned char, size>{});
  if (!key) return key;
  std::size_t bin_len = 0;
  if (sodium_hex2bin(key->bytes_, size, hex.data(), hex.size(), nullptr, &bin_len, nullptr) != 0 || bin_len != size) {
    return fail(errc::invalid_argument, "a hex key must be 64 hex characters");
  }
  return key;
}

result<secret_key> secret_key::generate() {
  auto key = from_bytes(std::array<unsigned char, size>{});
  if (!key) return key;
  randombytes_buf(key->bytes_, size);
  return key;
}

result<secret_key> secret_key::derive(const secret_key& parent, std::uint64_t id, std::string_view context) {
  if (parent.bytes_ == nullptr) return fail(errc::invalid_argument, "cannot derive from an empty key");
  if (context.size() != crypto_kdf_CONTEXTBYTES) {
    return fail(errc::invalid_argument, "a key derivation context must be 8 characters");
  }
  auto sub = from_bytes(std::array<unsigned char, size>{});
  if (!sub) return sub;
  const std::string ctx(context);  // crypto_kdf reads exactly 8 bytes
  if (crypto_kdf_derive_from_key(sub->bytes_, size, id, ctx.c_str(), parent.bytes_) != 0) {
    return fail(errc::internal, "key derivation failed");
  }
  return sub;
}

secret_key::secret_key(secret_key&& other) noexcept : bytes_(std::exchange(other.bytes_, nullptr)) {}

secret_key& secret_key::operator=(secret_key&& other) noexcept {
  if (this != &other) {
    this->~secret_key();
    bytes_ = std::exchange(other.bytes_, nullptr);
  }
  return *this;
}

secret_key::~secret_key() {
  if (bytes_ != nullptr) {
    sodium_memzero(bytes_, size);
    sodium_free(bytes_);
    bytes_ = nullptr;
  }
}

result<master_key> load_master_key(const std::optional<std::filesystem::path>& key_file,
                                   const std::filesystem::path& data_dir) {
  if (sodium_init() < 0) return fail(errc::unavailable, "libsodium failed to initialize");
  if (key_file) return read_existing_key_file(*key_file, /*check_mode=*/false);

  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) return fail(errc::unavailable, "cannot create data directory " + data_dir.string() + ": " + ec.message());
  const auto file = data_dir / k_master_key_name;
  // Generate if absent; if another process created it between the two steps, read it.
  if (!fs::exists(file, ec) && !ec) {
    auto generated = generate_key_file(file);
    if (generated || generated.error().code != errc::already_exists) return generated;
  }
  return read_existing_key_file(file, /*check_mode=*/true);
}

namespace {

secret_key derive_or_throw(const master_key& key, std::uint64_t id) {
  auto sub = secret_key::derive(key, id, k_kdf_context);
  if (!sub) {
    if (sub.error().code == errc::invalid_argument) throw std::invalid_argument(sub.error().message);
    throw std::bad_alloc();
  }
  return std::move(*sub);
}

}  // namespace

sodium_vault::sodium_vault(const master_key& key, ports::sealed_store& store)
    : encryption_key_(derive_or_throw(key, k_encryption_subkey)),
      fingerprint_key_(derive_or_throw(key, k_fingerprint_subkey)),
      store_(store) {}

result<ports::sealed_secret> sodium_vault::seal(const nlohmann::json& credentials) {
  std::string plaintext;
  try {
    plaintext = credentials.dump();
  } catch (const nlohmann::json::exception&) {
    return fail(errc::invalid_argument, "credentials are not valid UTF-8", {{"field", "credentials"}});
  }
  if (plaintext.size() > max_plaintext_bytes) {
    wipe(plaintext);
    return fail(errc::invalid_argument,
                "credentials are larger than " + std::to_string(max_plaintext_bytes) + " bytes serialized",
                {{"field", "credentials"}});
  }

  std::array<unsigned char, k_ref_random_bytes> id{};
  randombytes_buf(id.data(), id.size());
  ports::sealed_secret out{"vault:" + to_hex(id.data(), id.size()), fingerprint(credentials)};

  // 0x01 ‖ nonce ‖ ciphertext ‖ tag
  std::string stored(1 + k_nonce_bytes + plaintext.size() + k_tag_bytes, '\0');
  auto* p = reinterpret_cast<unsigned char*>(stored.data());
  p[0] = k_format_v1;
  randombytes_buf(p + 1, k_nonce_bytes);
  unsigned long long cipher_len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(p + 1 + k_nonce_bytes, &cipher_len, bytes_of(plaintext), plaintext.size(),
                                             bytes_of(out.ref), out.ref.size(), nullptr, p + 1, encryption_key_.data());
  wipe(plaintext);
  stored.resize(1 + k_nonce_bytes + static_cast<std::size_t>(cipher_len));

  if (auto put = store_.put_sealed(out.ref, stored); !put) return std::unexpected(put.error());
  return out;
}

result<nlohmann::json> sodium_vault::open(std::string_view ref) const {
  auto stored = store_.get_sealed(ref);
  if (!stored) return std::unexpected(stored.error());
  if (!*stored) return fail(errc::not_found, "no vault entry " + std::string(ref), {{"ref", std::string(ref)}});
  const std::string& bytes = **stored;
  if (bytes.size() < 1 + k_nonce_bytes + k_tag_bytes || static_cast<unsigned char>(bytes[0]) != k_format_v1) {
    return fail(errc::internal, "vault entry has an unknown format", {{"ref", std::string(ref)}});
  }
  const auto* p = bytes_of(bytes);
  const std::size_t cipher_len = bytes.size() - 1 - k_nonce_bytes;
  std::string plaintext(cipher_len - k_tag_bytes, '\0');
  unsigned long long plain_len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(reinterpret_cast<unsigned char*>(plaintext.data()), &plain_len,
                                                 nullptr, p + 1 + k_nonce_bytes, cipher_len, bytes_of(ref), ref.size(),
                                                 p + 1, encryption_key_.data()) != 0) {
    return fail(errc::internal, "vault entry failed authentication", {{"ref", std::string(ref)}});
  }
  plaintext.resize(static_cast<std::size_t>(plain_len));
  nlohmann::json credentials;
  try {
    credentials = nlohmann::json::parse(plaintext);
  } catch (const nlohmann::json::exception&) {
    // The exception text may quote the plaintext: it is not passed on.
    wipe(plaintext);
    return fail(errc::internal, "vault entry does not hold JSON", {{"ref", std::string(ref)}});
  }
  wipe(plaintext);
  return credentials;
}

result<void> sodium_vault::erase(std::string_view ref) { return store_.erase_sealed(ref); }

std::string sodium_vault::fingerprint(const nlohmann::json& credentials) const {
  std::string text = credentials.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::array<unsigned char, crypto_generichash_BYTES> digest{};
  crypto_generichash(digest.data(), digest.size(), bytes_of(text), text.size(), fingerprint_key_.data(),
                     secret_key::size);
  wipe(text);
  return "b2:" + to_hex(digest.data(), digest.size()).substr(0, k_fingerprint_hex);
}

}  // namespace atrium::vault_adapter
