#include "adapters/process/csv_reader.hpp"

#include <csv.h>

#include <algorithm>
#include <iterator>
#include <new>

#include "events/text.hpp"

namespace atrium::process_adapter {

namespace {

// RFC 4180 keeps spaces as part of a field; libcsv trims spaces and tabs unless told
// that nothing is a space.
int no_space(unsigned char) { return 0; }

// libcsv grows its field buffer while it parses one call's bytes; feeding at most this
// much per call bounds that growth past `max_field_bytes`.
constexpr std::size_t k_step = 64 * 1024;

}  // namespace

csv_reader::csv_reader(csv_limits limits) : limits_(limits) {
  parser_ = new csv_parser;
  if (csv_init(parser_, CSV_STRICT | CSV_STRICT_FINI | CSV_EMPTY_IS_NULL) != 0) {
    delete parser_;
    parser_ = nullptr;
    error_ = "cannot initialize the CSV parser";
    return;
  }
  csv_set_space_func(parser_, no_space);
}

csv_reader::~csv_reader() {
  if (parser_ != nullptr) {
    csv_free(parser_);
    delete parser_;
  }
}

void csv_reader::set_error(std::string message) {
  if (!error_) error_ = std::move(message);
}

result<void> csv_reader::status() const {
  if (error_) return fail(errc::invalid_argument, *error_);
  return {};
}

void csv_reader::on_field(void* data, std::size_t len, void* self) {
  static_cast<csv_reader*>(self)->field(static_cast<const char*>(data), len);
}

void csv_reader::on_record(int, void* self) { static_cast<csv_reader*>(self)->record(); }

void csv_reader::field(const char* data, std::size_t len) {
  if (error_) return;
  const std::size_t index = fields_in_record_++;
  const std::string_view text = data == nullptr ? std::string_view{} : std::string_view(data, len);
  if (!valid_utf8(text)) {
    set_error("result.csv: record " + std::to_string(record_no_) + ", field " + std::to_string(index + 1) +
              " is not valid UTF-8");
    return;
  }
  if (!header_) {
    if (index >= limits_.max_columns) {
      set_error("result.csv: the header has more than " + std::to_string(limits_.max_columns) + " fields");
      return;
    }
    header_fields_.push_back(text.empty() ? "column_" + std::to_string(index + 1) : std::string(text));
    return;
  }
  if (index >= header_->size()) {
    set_error("result.csv: record " + std::to_string(record_no_) + " has more fields than the header's " +
              std::to_string(header_->size()));
    return;
  }
  if (data == nullptr) {
    current_.emplace_back(std::nullopt);
  } else {
    current_.emplace_back(std::string(text));
  }
}

void csv_reader::record() {
  if (error_) return;
  if (!header_) {
    header_ = std::move(header_fields_);
    batch_.columns = header_->size();
  } else if (fields_in_record_ != header_->size()) {
    set_error("result.csv: record " + std::to_string(record_no_) + " has " + std::to_string(fields_in_record_) +
              " fields, the header has " + std::to_string(header_->size()));
    return;
  } else {
    std::move(current_.begin(), current_.end(), std::back_inserter(batch_.cells));
    ++rows_;
  }
  current_.clear();
  fields_in_record_ = 0;
  ++record_no_;
}

result<void> csv_reader::feed(std::string_view bytes) {
  if (finished_ && !error_) set_error("result.csv: data after the end");
  while (!error_ && !bytes.empty()) {
    const std::size_t n = std::min(bytes.size(), k_step);
    const std::size_t done = csv_parse(parser_, bytes.data(), n, on_field, on_record, this);
    if (error_) break;
    if (done != n) {
      const int code = csv_error(parser_);
      set_error(code == CSV_EPARSE ? "result.csv: malformed quoting in record " + std::to_string(record_no_) +
                                         " (RFC 4180: a quote inside an unquoted field, or text after a closing quote)"
                                   : std::string("result.csv: ") + csv_strerror(code));
      break;
    }
    if (csv_get_buffer_size(parser_) > limits_.max_field_bytes) {
      set_error("result.csv: record " + std::to_string(record_no_) + " has a field longer than " +
                std::to_string(limits_.max_field_bytes) + " bytes");
      break;
    }
    bytes.remove_prefix(n);
  }
  return status();
}

result<void> csv_reader::finish() {
  if (error_) return status();
  finished_ = true;
  if (csv_fini(parser_, on_field, on_record, this) != 0 || csv_error(parser_) == CSV_EPARSE) {
    set_error("result.csv: a quoted field is not closed at the end of the file (record " + std::to_string(record_no_) +
              ")");
  }
  return status();
}

}  // namespace atrium::process_adapter
