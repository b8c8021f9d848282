#include "adapters/rocksdb/kv_store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <nlohmann/json.hpp>

#include <algorithm>

#include "adapters/rocksdb/encoding.hpp"

namespace atrium::rocksdb_adapter {
namespace {

nlohmann::json record_json(const ports::idempotency_record& r) {
  return {{"fingerprint", r.fingerprint},
          {"completed", r.completed},
          {"status", r.status},
          {"body", r.body},
          {"etag", r.etag}};
}

/// The JSON text of `j`; `invalid_argument` naming `what` if a string in it is not UTF-8.
result<std::string> dump(const nlohmann::json& j, std::string_view what) {
  try {
    return j.dump();
  } catch (const nlohmann::json::exception& ex) {
    return fail(errc::invalid_argument, std::string(what) + " is not valid UTF-8 text: " + ex.what());
  }
}

nlohmann::json token_json(const ports::session_record& s) {
  nlohmann::json j{{"user_id", s.user_id}, {"issued_at", s.issued_at}, {"expires_at", s.expires_at}};
  if (s.kind == ports::token_kind::api) {
    j["kind"] = "api";
    j["token_id"] = s.token_id;
    j["name"] = s.name;
    j["scopes"] = s.scopes;
    j["created_by"] = s.created_by;
    j["last_used_at"] = s.last_used_at;
  }
  return j;
}

/// A record from its JSON; records written before API tokens existed are sessions.
ports::session_record token_of_json(const nlohmann::json& j) {
  ports::session_record s{j.at("user_id").get<std::string>(), j.at("issued_at").get<std::int64_t>(),
                          j.at("expires_at").get<std::int64_t>()};
  if (j.value("kind", "session") == "api") {
    s.kind = ports::token_kind::api;
    s.token_id = j.at("token_id").get<std::string>();
    s.name = j.value("name", "");
    s.scopes = j.value("scopes", std::vector<std::string>{});
    s.created_by = j.value("created_by", "");
    s.last_used_at = j.value("last_used_at", std::int64_t{0});
  }
  return s;
}

}  // namespace

kv_store::kv_store(std::shared_ptr<database> db) : db_(std::move(db)) {}

result<void> kv_store::write_one(std::string_view family, std::string_view key, std::optional<std::string_view> bytes,
                                 bool sync, std::string_view what) {
  auto lock = db_->use();
  if (!lock) return std::unexpected(lock.error());
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  rocksdb::WriteBatch batch;
  if (bytes) {
    batch.Put(db_->family(family), slice(key), slice(*bytes));
  } else {
    batch.Delete(db_->family(family), slice(key));
  }
  return db_->write(wo, batch, what);
}

result<void> kv_store::put(std::string_view token_hash, const ports::session_record& s) {
  auto bytes = dump(token_json(s), "session");
  if (!bytes) return std::unexpected(bytes.error());
  std::lock_guard lock(tokens_mu_);
  return write_one(families::tokens, token_hash, *bytes, true, "store session");
}

result<std::optional<ports::session_record>> kv_store::get(std::string_view token_hash) const {
  auto lock = db_->use();
  if (!lock) return std::unexpected(lock.error());
  auto raw = db_->get(db_->family(families::tokens), token_hash);
  if (!raw) return std::unexpected(raw.error());
  if (!*raw) return std::optional<ports::session_record>{};
  try {
    return std::optional<ports::session_record>{token_of_json(nlohmann::json::parse(**raw))};
  } catch (const nlohmann::json::exception& ex) {
    return fail(errc::internal, std::string("corrupt session: ") + ex.what());
  }
}

result<void> kv_store::erase(std::string_view token_hash) {
  std::lock_guard lock(tokens_mu_);
  return write_one(families::tokens, token_hash, std::nullopt, true, "delete session");
}

result<std::size_t> kv_store::erase_user(std::string_view user_id, std::string_view except_token_hash) {
  std::lock_guard tokens_lock(tokens_mu_);
  auto lock = db_->use();
  if (!lock) return std::unexpected(lock.error());
  auto* tokens = db_->family(families::tokens);
  // Sessions are keyed by token hash only: a user's sessions are found by one pass.
  rocksdb::WriteBatch batch;
  std::size_t erased = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->handle().NewIterator(rocksdb::ReadOptions(), tokens));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().ToStringView() == except_token_hash) continue;
    const auto j = nlohmann::json::parse(it->value().ToStringView(), nullptr, false);
    if (!j.is_object() || j.value("user_id", "") != user_id || j.value("kind", "session") != "session") continue;
    if (auto st = batch.Delete(tokens, it->key()); !st.ok()) {
      return std::unexpected(storage_error(st, "delete sessions"));
    }
    ++erased;
  }
  if (auto st = it->status(); !st.ok()) return std::unexpected(storage_error(st, "scan sessions"));
  if (erased == 0) return erased;
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (auto st = db_->handle().Write(wo, &batch); !st.ok()) return std::unexpected(storage_error(st, "delete sessions"));
  return erased;
}

result<std::vector<ports::token_entry>> kv_store::scan_tokens(
    const std::function<bool(const ports::session_record&)>& keep) const {
  auto lock = db_->use();
  if (!lock) return std::unexpected(lock.error());
  std::vector<ports::token_entry> out;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->handle().NewIterator(rocksdb::ReadOptions(), db_->family(families::tokens)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const auto j = nlohmann::json::parse(it->value().ToStringView(), nullptr, false);
    if (!j.is_object()) continue;
    try {
      auto record = token_of_json(j);
      if (keep(record)) out.push_back({it->key().ToString(), std::move(record)});
    } catch (const nlohmann::json::exception&) {
      continue;  // a corrupt record is skipped here; `get` reports it
    }
  }
  if (auto st = it->status(); !st.ok()) return std::unexpected(storage_error(st, "scan tokens"));
  return out;
}

result<std::vector<ports::token_entry>> kv_store::api_tokens_of(std::string_view user_id) const {
  auto found = scan_tokens(
      [&](const ports::session_record& r) { return r.kind == ports::token_kind::api && r.user_id == user_id; });
  if (!found) return found;
  std::sort(found->begin(), found->end(), [](const auto& a, const auto& b) {
    return std::pair{a.record.issued_at, a.record.token_id} < std::pair{b.record.issued_at, b.record.token_id};
  });
  return found;
}

result<std::optional<ports::token_entry>> kv_store::api_token(std::string_view token_id) const {
  auto found = scan_tokens(
      [&](const ports::session_record& r) { return r.kind == ports::token_kind::api && r.token_id == token_id; });
  if (!found) return std::unexpected(found.error());
  if (found->empty()) return std::optional<ports::token_entry>{};
  return std::optional<ports::token_entry>{std::move(found->front())};
}

result<void> kv_store::touch(std::string_view token_hash, std::int64_t at) {
  std::lock_guard lock(tokens_mu_);
  std::optional<ports::session_record> record;
  {
    auto db_lock = db_->use();
    if (!db_lock) return std::unexpected(db_lock.error());
    auto raw = db_->get(db_->family(families::tokens), token_hash);
    if (!raw) return std::unexpected(raw.error());
    if (!*raw) return {};  // revoked meanwhile: never written back
    try {
      record = token_of_json(nlohmann::json::parse(**raw));
    } catch (const nlohmann::json::exception& ex) {
      return fail(errc::internal, std::string("corrupt session: ") + ex.what());
    }
  }
  record->last_used_at = at;
  auto bytes = dump(token_json(*record), "session");
  if (!bytes) return std::unexpected(bytes.error());
  return write_one(families::tokens, token_hash, *bytes, false, "note token use");
}

result<std::pair<ports::idempotency_claim, ports::idempotency_record>> kv_store::claim(std::string_view key,
                                                                                       std::string_view fingerprint) {
  std::lock_guard lock(idempotency_mu_);
  {
    auto db_lock = db_->use();
    if (!db_lock) return std::unexpected(db_lock.error());
    auto raw = db_->get(db_->family(families::idempotency), key);
    if (!raw) return std::unexpected(raw.error());
    if (*raw) {
      ports::idempotency_record r;
      try {
        const auto j = nlohmann::json::parse(**raw);
        r = {j.at("fingerprint").get<std::string>(), j.at("completed").get<bool>(), j.at("status").get<unsigned>(),
             j.at("body").get<std::string>(), j.value("etag", "")};
      } catch (const nlohmann::json::exception& ex) {
        return fail(errc::internal, std::string("corrupt idempotency record: ") + ex.what());
      }
      if (r.fingerprint != fingerprint) return std::pair{ports::idempotency_claim::mismatch, r};
      return std::pair{r.completed ? ports::idempotency_claim::replay : ports::idempotency_claim::retry, r};
    }
  }
  ports::idempotency_record fresh{std::string(fingerprint), false, 0, {}, {}};
  auto bytes = dump(record_json(fresh), "idempotency record");
  if (!bytes) return std::unexpected(bytes.error());
  if (auto ok = write_one(families::idempotency, key, *bytes, true, "claim idempotency key"); !ok) {
    return std::unexpected(ok.error());
  }
  return std::pair{ports::idempotency_claim::claimed, fresh};
}

result<void> kv_store::complete(std::string_view key, const ports::idempotency_record& record) {
  auto bytes = dump(record_json(record), "idempotency record");
  if (!bytes) return std::unexpected(bytes.error());
  std::lock_guard lock(idempotency_mu_);
  return write_one(families::idempotency, key, *bytes, false, "complete idempotency key");
}

result<void> kv_store::put_sealed(std::string_view ref, std::string_view bytes) {
  return write_one(families::vault, ref, bytes, true, "store sealed secret");
}

result<std::optional<std::string>> kv_store::get_sealed(std::string_view ref) const {
  auto lock = db_->use();
  if (!lock) return std::unexpected(lock.error());
  return db_->get(db_->family(families::vault), ref);
}

result<void> kv_store::erase_sealed(std::string_view ref) {
  return write_one(families::vault, ref, std::nullopt, true, "delete sealed secret");
}

}  // namespace atrium::rocksdb_adapter
