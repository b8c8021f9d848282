// Tests of the credential vault (adapters/vault) over a real RocksDB store in a fresh
// temporary directory, and of master key loading and generation on real files.

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <sodium.h>

#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "adapters/rocksdb/rocksdb_store.hpp"
#include "adapters/vault/sodium_vault.hpp"
#include "tests/support/process.hpp"

namespace {

namespace fs = std::filesystem;
using atrium::errc;
using atrium::rocksdb_adapter::rocksdb_store;
using atrium::vault_adapter::load_master_key;
using atrium::vault_adapter::master_key;
using atrium::vault_adapter::sodium_vault;

const nlohmann::json k_credentials = {{"user", "reporting"}, {"password", "correct horse battery staple"}};

std::unique_ptr<rocksdb_store> open_store(const fs::path& dir) {
  auto store = rocksdb_store::open((dir / "db").string(), {});
  REQUIRE(store.has_value());
  return std::move(*store);
}

master_key generated_key(const fs::path& dir) {
  auto key = load_master_key(std::nullopt, dir);
  REQUIRE(key.has_value());
  return std::move(*key);
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << bytes;
  REQUIRE(f.good());
}

bool same_key(const master_key& a, const master_key& b) {
  return std::memcmp(a.data(), b.data(), master_key::size) == 0;
}

std::string key_hex(const master_key& k) {
  std::string hex(2 * master_key::size + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), k.data(), master_key::size);
  hex.pop_back();
  return hex;
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("vault: seal and open round-trip over RocksDB, the stored bytes hide the password", "[vault]") {
  atrium::test::temp_dir dir;
  std::string ref;
  {
    auto store = open_store(dir.path());
    const auto key = generated_key(dir.path());
    sodium_vault vault(key, store->kv());

    auto sealed = vault.seal(k_credentials);
    REQUIRE(sealed.has_value());
    ref = sealed->ref;
    CHECK(ref.starts_with("vault:"));
    CHECK(ref.size() == 6 + 32);
    CHECK(sealed->fingerprint.starts_with("b2:"));
    CHECK(sealed->fingerprint.size() == 3 + 32);
    CHECK(sealed->fingerprint == vault.fingerprint(k_credentials));

    auto opened = vault.open(ref);
    REQUIRE(opened.has_value());
    CHECK(*opened == k_credentials);

    // Stored: 0x01 ‖ 24-byte nonce ‖ ciphertext ‖ 16-byte tag, no plaintext.
    auto bytes = store->kv().get_sealed(ref);
    REQUIRE(bytes.has_value());
    REQUIRE(bytes->has_value());
    CHECK(static_cast<unsigned char>((**bytes)[0]) == 0x01);
    CHECK((*bytes)->size() == 1 + 24 + k_credentials.dump().size() + 16);
    CHECK((*bytes)->find("correct horse") == std::string::npos);
    CHECK((*bytes)->find("reporting") == std::string::npos);

    // Every call gets a new ref and a new nonce, even for equal credentials.
    auto again = vault.seal(k_credentials);
    REQUIRE(again.has_value());
    CHECK(again->ref != ref);
    CHECK(again->fingerprint == sealed->fingerprint);
    CHECK(*store->kv().get_sealed(again->ref) != *bytes);
  }
  // Nothing RocksDB wrote (WAL, SST, manifest) holds the password.
  for (const auto& entry : fs::recursive_directory_iterator(dir.path() / "db")) {
    if (!entry.is_regular_file()) continue;
    INFO(entry.path().string());
    CHECK(read_file(entry.path()).find("correct horse") == std::string::npos);
  }

  // Reopened with the same data dir: the key is read back and old entries decrypt.
  auto store = open_store(dir.path());
  const auto key = generated_key(dir.path());
  sodium_vault vault(key, store->kv());
  auto opened = vault.open(ref);
  REQUIRE(opened.has_value());
  CHECK(*opened == k_credentials);

  REQUIRE(vault.erase(ref).has_value());
  auto gone = vault.open(ref);
  REQUIRE_FALSE(gone.has_value());
  CHECK(gone.error().code == errc::not_found);
  CHECK(vault.erase(ref).has_value());  // absent is fine
}

TEST_CASE("vault: a tampered entry fails authentication instead of crashing", "[vault]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path());
  const auto key = generated_key(dir.path());
  sodium_vault vault(key, store->kv());
  auto sealed = vault.seal(k_credentials);
  REQUIRE(sealed.has_value());
  const std::string original = **store->kv().get_sealed(sealed->ref);

  // A byte of the nonce, of the ciphertext and of the tag.
  for (const std::size_t at : {std::size_t{1}, std::size_t{24}, std::size_t{30}, original.size() - 1}) {
    std::string tampered = original;
    tampered[at] = static_cast<char>(tampered[at] ^ 0x01);
    REQUIRE(store->kv().put_sealed(sealed->ref, tampered).has_value());
    auto opened = vault.open(sealed->ref);
    INFO("byte " << at);
    REQUIRE_FALSE(opened.has_value());
    CHECK(opened.error().code == errc::internal);
    CHECK(opened.error().message == "vault entry failed authentication");
  }
  // An unknown format byte, a truncated entry, an empty one.
  for (const std::string& bad : {std::string("\x02") + original.substr(1), original.substr(0, 20), std::string()}) {
    REQUIRE(store->kv().put_sealed(sealed->ref, bad).has_value());
    auto opened = vault.open(sealed->ref);
    REQUIRE_FALSE(opened.has_value());
    CHECK(opened.error().code == errc::internal);
  }
  REQUIRE(store->kv().put_sealed(sealed->ref, original).has_value());
  CHECK(vault.open(sealed->ref).has_value());
}

TEST_CASE("vault: a ciphertext moved under another ref fails (the ref is the AEAD's additional data)", "[vault]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path());
  const auto key = generated_key(dir.path());
  sodium_vault vault(key, store->kv());
  auto a = vault.seal(k_credentials);
  auto b = vault.seal({{"user", "other"}, {"password", "hunter2hunter2"}});
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());

  REQUIRE(store->kv().put_sealed(b->ref, **store->kv().get_sealed(a->ref)).has_value());
  auto moved = vault.open(b->ref);
  REQUIRE_FALSE(moved.has_value());
  CHECK(moved.error().code == errc::internal);
  CHECK(moved.error().message.find("correct horse") == std::string::npos);

  REQUIRE(
      store->kv().put_sealed("vault:00000000000000000000000000000000", **store->kv().get_sealed(a->ref)).has_value());
  CHECK_FALSE(vault.open("vault:00000000000000000000000000000000").has_value());
  CHECK(vault.open(a->ref).has_value());

  // Another master key cannot open it either.
  atrium::test::temp_dir other_dir;
  const auto other_key = generated_key(other_dir.path());
  sodium_vault other(other_key, store->kv());
  auto foreign = other.open(a->ref);
  REQUIRE_FALSE(foreign.has_value());
  CHECK(foreign.error().code == errc::internal);
}

TEST_CASE("vault: fingerprints are keyed, stable for equal credentials, distinct for different ones", "[vault]") {
  atrium::test::temp_dir dir;
  auto store = open_store(dir.path());
  const auto key = generated_key(dir.path());
  sodium_vault vault(key, store->kv());

  nlohmann::json reordered = nlohmann::json::object();
  reordered["password"] = "correct horse battery staple";
  reordered["user"] = "reporting";
  const auto fp = vault.fingerprint(k_credentials);
  CHECK(vault.fingerprint(reordered) == fp);
  CHECK(vault.fingerprint(nlohmann::json::parse(k_credentials.dump())) == fp);
  CHECK(vault.fingerprint({{"user", "reporting"}, {"password", "correct horse battery staplE"}}) != fp);
  CHECK(vault.fingerprint({{"user", "reporting"}}) != fp);

  // Not the unkeyed BLAKE2b anyone could compute from a guessed password.
  const auto text = k_credentials.dump();
  unsigned char digest[crypto_generichash_BYTES];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(text.data()), text.size(), nullptr,
                     0);
  char hex[2 * crypto_generichash_BYTES + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  CHECK(fp != "b2:" + std::string(hex, 32));

  // Another master key gives another fingerprint.
  atrium::test::temp_dir other_dir;
  const auto other_key = generated_key(other_dir.path());
  CHECK(sodium_vault(other_key, store->kv()).fingerprint(k_credentials) != fp);

  // Invalid UTF-8: seal refuses it, fingerprint does not throw.
  const nlohmann::json bad = {{"password", std::string("\xff\xfe")}};
  CHECK_NOTHROW(vault.fingerprint(bad));
  auto sealed = vault.seal(bad);
  REQUIRE_FALSE(sealed.has_value());
  CHECK(sealed.error().code == errc::invalid_argument);
}

TEST_CASE("vault: the master key is generated once with mode 0600 and read back", "[vault][master_key]") {
  atrium::test::temp_dir dir;
  const auto data_dir = dir.path() / "data";  // created by load_master_key
  const auto first = generated_key(data_dir);
  const auto file = data_dir / "master.key";
  REQUIRE(fs::exists(file));
  CHECK(mode_of(file) == 0600);
  const auto content = read_file(file);
  CHECK(content.size() == 65);
  CHECK(content == key_hex(first) + "\n");

  const auto second = generated_key(data_dir);
  CHECK(same_key(first, second));

  atrium::test::temp_dir other;
  CHECK_FALSE(same_key(first, generated_key(other.path())));

  SECTION("a generated key file readable by others is refused") {
    REQUIRE(::chmod(file.c_str(), 0644) == 0);
    auto refused = load_master_key(std::nullopt, data_dir);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == errc::failed_precondition);
    CHECK(refused.error().message.find("0600") != std::string::npos);
    CHECK(refused.error().message.find(content.substr(0, 16)) == std::string::npos);
  }
  SECTION("a malformed generated key file is refused without quoting it") {
    write_file(file, content.substr(0, 40) + "\n");
    auto refused = load_master_key(std::nullopt, data_dir);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == errc::invalid_argument);
    CHECK(refused.error().message.find(content.substr(0, 16)) == std::string::npos);
  }
}

TEST_CASE("vault: ATRIUM_MASTER_KEY_FILE with 64 hex chars or 32 raw bytes, other lengths refused",
          "[vault][master_key]") {
  atrium::test::temp_dir dir;
  const auto data_dir = dir.path() / "data";
  const auto file = dir.path() / "key";
  unsigned char raw[32];
  randombytes_buf(raw, sizeof raw);
  char hex_buf[65];
  sodium_bin2hex(hex_buf, sizeof hex_buf, raw, sizeof raw);
  const std::string hex(hex_buf, 64);
  const std::string raw_bytes(reinterpret_cast<const char*>(raw), sizeof raw);

  for (const std::string& content : {hex, hex + "\n", hex + "\r\n", raw_bytes}) {
    write_file(file, content);
    ::chmod(file.c_str(), 0644);  // a mounted secret's mode is not checked
    auto key = load_master_key(file, data_dir);
    INFO("content of " << content.size() << " bytes");
    REQUIRE(key.has_value());
    CHECK(std::memcmp(key->data(), raw, sizeof raw) == 0);
  }
  CHECK_FALSE(fs::exists(data_dir / "master.key"));  // not generated when a file is given

  std::string upper = hex;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  write_file(file, upper);
  REQUIRE(load_master_key(file, data_dir).has_value());

  std::string not_hex = hex;
  not_hex[10] = 'z';
  for (const std::string& content : {raw_bytes.substr(0, 31), raw_bytes + "x", hex.substr(0, 63), hex + "0",
                                     hex + "\n\n", not_hex, std::string(), std::string(4096, 'a')}) {
    write_file(file, content);
    auto key = load_master_key(file, data_dir);
    INFO("content of " << content.size() << " bytes");
    REQUIRE_FALSE(key.has_value());
    CHECK(key.error().code == errc::invalid_argument);
    CHECK(key.error().message.find(hex.substr(0, 16)) == std::string::npos);
  }

  auto missing = load_master_key(dir.path() / "nope", data_dir);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code == errc::not_found);
}
