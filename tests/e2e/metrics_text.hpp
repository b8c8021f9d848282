#pragma once
// A reader of the Prometheus text exposition format for tests: samples by name and
// labels (comments skipped; label values unescaped).

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace atrium::test {

/// The samples of one /metrics body.
struct exposition {
  struct sample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
  };
  std::string body;
  std::vector<sample> samples;
  std::set<std::string> families;  ///< names with a `# TYPE` line

  /// Parses `text`; a line that is not a sample or a comment throws std::runtime_error.
  static exposition parse(const std::string& text) {
    exposition out;
    out.body = text;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      if (line.starts_with("# TYPE ")) {
        const auto rest = line.substr(7);
        out.families.insert(rest.substr(0, rest.find(' ')));
        continue;
      }
      if (line[0] == '#') continue;
      sample s;
      std::size_t i = 0;
      while (i < line.size() && line[i] != '{' && line[i] != ' ') s.name += line[i++];
      if (i < line.size() && line[i] == '{') {
        ++i;
        while (i < line.size() && line[i] != '}') {
          std::string key;
          while (i < line.size() && line[i] != '=') key += line[i++];
          if (i + 1 >= line.size() || line[i + 1] != '"') throw std::runtime_error("bad labels: " + line);
          i += 2;
          std::string value;
          while (i < line.size() && line[i] != '"') {
            if (line[i] == '\\' && i + 1 < line.size()) {
              ++i;
              value += line[i] == 'n' ? '\n' : line[i];
            } else {
              value += line[i];
            }
            ++i;
          }
          ++i;  // the closing quote
          s.labels[key] = value;
          if (i < line.size() && line[i] == ',') ++i;
        }
        ++i;  // the closing brace
      }
      if (i >= line.size() || line[i] != ' ') throw std::runtime_error("no value: " + line);
      const auto v = line.substr(i + 1);
      s.value = v == "+Inf" ? 1e300 : v == "-Inf" ? -1e300 : std::stod(v);
      out.samples.push_back(std::move(s));
    }
    return out;
  }

  /// The samples of `name` whose labels include `labels`.
  [[nodiscard]] std::vector<const sample*> find(const std::string& name,
                                                const std::map<std::string, std::string>& labels = {}) const {
    std::vector<const sample*> out;
    for (const auto& s : samples) {
      if (s.name != name) continue;
      bool all = true;
      for (const auto& [k, v] : labels) {
        auto it = s.labels.find(k);
        all = all && it != s.labels.end() && it->second == v;
      }
      if (all) out.push_back(&s);
    }
    return out;
  }
  /// The sum of those samples' values (0 when none).
  [[nodiscard]] double value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    double sum = 0;
    for (const auto* s : find(name, labels)) sum += s->value;
    return sum;
  }
  /// True when a sample of `name` is served.
  [[nodiscard]] bool has(const std::string& name) const { return !find(name).empty(); }
  /// True when the family `name` is declared (it may have no sample).
  [[nodiscard]] bool has_family(const std::string& name) const { return families.contains(name); }
  /// The distinct values of label `label` among the samples of `name`.
  [[nodiscard]] std::set<std::string> label_values(const std::string& name, const std::string& label) const {
    std::set<std::string> out;
    for (const auto* s : find(name)) {
      if (auto it = s->labels.find(label); it != s->labels.end()) out.insert(it->second);
    }
    return out;
  }
};

}  // namespace atrium::test
