#pragma once
/// The OpenAPI 3.1 description of the HTTP API, served at `GET /v1/openapi.json`: the
/// bytes of docs/openapi.json, embedded at build time (cmake/embed_text.cmake writes
/// `openapi_document.cpp` into the build tree, remade when the file changes).

#include <string_view>

namespace atrium::http_adapter {

/// The text of docs/openapi.json as it was when atriumd was built (UTF-8 JSON; static
/// storage, never freed).
[[nodiscard]] std::string_view openapi_document();

}  // namespace atrium::http_adapter
