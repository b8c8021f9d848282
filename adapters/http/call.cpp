// Answering a call: the log line, the idempotency record, the API's error shape.
#include "adapters/http/call.hpp"

#include <algorithm>

namespace atrium::http_adapter {

void send(const call_ptr& c, unsigned status, const json& body, header_list headers) {
  headers.emplace_back("X-Request-Id", c->correlation_id);
  // RFC 9110 §15.3.2: a 201 names the resource it created. A create answers the new
  // entity, whose `id` is the last segment of its URL under the collection POSTed to
  // (routes whose resource lives elsewhere set `Location` themselves).
  if (status == 201 && c->req.method == "POST" && body.is_object() &&
      std::none_of(headers.begin(), headers.end(), [](const auto& h) { return h.first == "Location"; })) {
    if (auto id = body.find("id"); id != body.end() && id->is_string()) {
      headers.emplace_back("Location", c->req.target.substr(0, c->req.target.find('?')) + "/" + id->get<std::string>());
    }
  }
  const auto ms = std::chrono::duration<double, std::milli>(clock_type::now() - c->started).count();
  spdlog::info("http {} status={} ms={:.2f} user={} request_id={}", log_request(*c), status, ms, log_escape(c->who, 64),
               c->correlation_id);
  const bool remembered = c->remember && status < 500;
  if (c->json_sink && !remembered) return c->json_sink(status, body, headers);
  // Replace, not throw, on invalid UTF-8: a response must never take a thread down.
  auto text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  if (remembered) {
    std::string tag;
    for (const auto& [k, v] : headers) {
      if (k == "ETag") tag = v;
    }
    c->remember(status, text, tag);
  }
  if (c->json_sink) return c->json_sink(status, body, headers);
  c->respond(http_response{status, std::move(text), "application/json", std::move(headers)});
}

void send_error(const call_ptr& c, const error& e, header_list headers) {
  if (e.code == errc::unauthenticated) headers.emplace_back("WWW-Authenticate", "Bearer");
  // RFC 9110 §10.2.3: when to try again after a 503 (the store recovering, a full disk),
  // unless the route said so itself. (The routes that answer 429 set their own.)
  const auto status = http_status(e.code);
  if (status == 503 &&
      std::none_of(headers.begin(), headers.end(), [](const auto& h) { return h.first == "Retry-After"; })) {
    headers.emplace_back("Retry-After", "5");
  }
  // `details` is always an object, as the error shape promises.
  send(c, status,
       json{{"error",
             {{"code", std::string(to_string(e.code))},
              {"message", e.message},
              {"details", e.details.is_object() ? e.details : json::object()}}}},
       std::move(headers));
}

void send_body(const call_ptr& c, std::string body, std::string content_type, header_list headers) {
  headers.emplace_back("X-Request-Id", c->correlation_id);
  const auto ms = std::chrono::duration<double, std::milli>(clock_type::now() - c->started).count();
  spdlog::info("http {} status=200 ms={:.2f} user={} request_id={} bytes={}", log_request(*c), ms,
               log_escape(c->who, 64), c->correlation_id, body.size());
  c->respond(http_response{200, std::move(body), std::move(content_type), std::move(headers)});
}

void send_view(const call_ptr& c, const json& view) {
  send(c, 200, view, {{"ETag", etag(view.value("version", std::uint64_t{0}))}});
}

void send_page(const call_ptr& c, const char* name, const ports::page& page) {
  send(c, 200, json{{name, page.items}, {"next", page.next}});
}

unsigned http_status(errc code) noexcept {
  switch (code) {
    case errc::invalid_argument:
      return 400;
    case errc::unauthenticated:
      return 401;
    case errc::forbidden:
      return 403;
    case errc::not_found:
      return 404;
    case errc::version_conflict:
    case errc::already_exists:
    case errc::failed_precondition:
      return 409;
    case errc::payload_too_large:
      return 413;
    case errc::precondition_required:
      return 428;
    case errc::gone:
      return 410;
    case errc::unavailable:
      return 503;
    case errc::internal:
      return 500;
  }
  return 500;
}

}  // namespace atrium::http_adapter
