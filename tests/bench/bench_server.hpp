#pragma once
/// The real atriumd for the benches that drive it over loopback (http, reads, push):
/// started, waited for and logged into the same way by each. Implemented in
/// http_bench.cpp (atrium_bench_http).

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "tests/bench/bench.hpp"
#include "tests/support/process.hpp"

namespace atrium::bench {

/// A running atriumd, logged in as admin.
struct started_atriumd {
  std::unique_ptr<test::child_process> proc;
  std::string address;                      ///< "127.0.0.1:PORT"
  boost::asio::ip::tcp::endpoint endpoint;  ///< the same, resolved
  std::string token;                        ///< the admin's session token
};

/// Starts `o.atriumd_path` (default: the build's atriumd) on 127.0.0.1:0 over `dir`/data,
/// logging to `dir`/atriumd.log, with `extra` arguments and `o.atriumd_log_level`; waits
/// (30 s at most) until `GET /healthz` answers 200 on the address it writes to
/// DATA/atriumd.addr, then logs in as admin. `what` prefixes the progress line. Throws
/// std::runtime_error (with the log's last 2,000 bytes) if it does not start or the login
/// fails.
started_atriumd start_atriumd(const options& o, const std::filesystem::path& dir, const std::string& what,
                              const std::vector<std::string>& extra = {});

}  // namespace atrium::bench
