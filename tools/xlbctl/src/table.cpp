// SPDX-License-Identifier: Apache-2.0
#include "xlbctl/table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace xlbctl {

std::string Table::render(size_t indent) const {
  std::vector<size_t> width(columns_.size(), 0);
  for (size_t c = 0; c < columns_.size(); c++) width[c] = columns_[c].title.size();
  for (const auto& row : rows_) {
    for (size_t c = 0; c < columns_.size() && c < row.size(); c++) {
      width[c] = std::max(width[c], row[c].size());
    }
  }
  std::string out;
  auto line = [&](auto cell_of) {
    std::string text(indent, ' ');
    for (size_t c = 0; c < columns_.size(); c++) {
      const std::string& cell = cell_of(c);
      std::string pad(width[c] - cell.size(), ' ');
      if (c) text += "  ";
      text += columns_[c].align == Align::kRight ? pad + cell : cell + pad;
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text + "\n";
  };
  line([&](size_t c) -> const std::string& { return columns_[c].title; });
  static const std::string kEmpty;
  for (const auto& row : rows_) {
    line([&](size_t c) -> const std::string& { return c < row.size() ? row[c] : kEmpty; });
  }
  return out;
}

std::string render_fields(const std::vector<std::pair<std::string, std::string>>& fields,
                          size_t indent) {
  size_t width = 0;
  for (const auto& [k, v] : fields) width = std::max(width, k.size());
  std::string out;
  for (const auto& [k, v] : fields) {
    std::string text = std::string(indent, ' ') + k + std::string(width - k.size() + 2, ' ') + v;
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text + "\n";
  }
  return out;
}

namespace {

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

}  // namespace

std::string human_bytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  size_t unit = 0;
  v /= 1024;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    unit++;
  }
  return fixed(v, 1) + " " + kUnits[unit];
}

std::string human_rate(double per_second) {
  if (!std::isfinite(per_second) || per_second < 0) return "-";
  if (per_second < 1000) return fixed(per_second, per_second < 10 && per_second != 0 ? 1 : 0);
  static constexpr const char* kUnits[] = {"k", "M", "G", "T"};
  double v = per_second / 1000;
  size_t unit = 0;
  while (v >= 1000 && unit + 1 < std::size(kUnits)) {
    v /= 1000;
    unit++;
  }
  return fixed(v, 1) + kUnits[unit];
}

std::string percent(double fraction, int decimals) {
  if (!std::isfinite(fraction)) return "-";
  return fixed(fraction * 100, decimals) + "%";
}

std::string human_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "-";
  auto total = static_cast<uint64_t>(seconds);
  uint64_t d = total / 86400, h = total / 3600 % 24, m = total / 60 % 60, s = total % 60;
  std::string out;
  if (d) out += std::to_string(d) + "d ";
  if (d || h) out += std::to_string(h) + "h ";
  if (d || h || m) out += std::to_string(m) + "m ";
  return out + std::to_string(s) + "s";
}

std::string bar(double fraction, size_t width) {
  if (!std::isfinite(fraction)) fraction = 0;
  fraction = std::clamp(fraction, 0.0, 1.0);
  auto full = static_cast<size_t>(std::lround(fraction * static_cast<double>(width)));
  return std::string(full, '#') + std::string(width - full, '.');
}

std::string or_dash(const std::optional<std::string>& text) {
  return text && !text->empty() ? *text : "-";
}

}  // namespace xlbctl
