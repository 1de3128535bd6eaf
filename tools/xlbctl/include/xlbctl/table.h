// SPDX-License-Identifier: Apache-2.0
// Plain-text output for people: aligned tables and the number formats they use. Everything is
// ASCII, so a column's width is its length in bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace xlbctl {

enum class Align { kLeft, kRight };

struct Column {
  std::string title;
  Align align = Align::kLeft;
};

// Columns separated by two spaces, every column as wide as its widest cell, numbers
// right-aligned; no trailing blanks. Rows shorter than the header are padded with "".
class Table {
 public:
  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

  void add_row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  size_t rows() const { return rows_.size(); }
  // `indent` spaces before every line.
  std::string render(size_t indent = 0) const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// "key  value" lines with the keys padded to one width (status, lookup, a VIP's settings).
std::string render_fields(const std::vector<std::pair<std::string, std::string>>& fields,
                          size_t indent = 0);

// 1023 -> "1023 B", 1536 -> "1.5 KiB", ... (binary units, as ip -h does for bytes).
std::string human_bytes(uint64_t bytes);
// 950 -> "950", 12345 -> "12.3k", 4.2e6 -> "4.2M" (decimal units, for rates).
std::string human_rate(double per_second);
// 0.3322 -> "33.2%".
std::string percent(double fraction, int decimals = 1);
// 3725 s -> "1h 2m 5s".
std::string human_duration(double seconds);
// A bar of `width` cells, `fraction` (clamped to [0, 1]) of them '#', the rest '.'.
std::string bar(double fraction, size_t width);
// The cell for an optional value: the text, or "-".
std::string or_dash(const std::optional<std::string>& text);

}  // namespace xlbctl
