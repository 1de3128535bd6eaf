// SPDX-License-Identifier: Apache-2.0
#include "xlbctl/render.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "xlbctl/table.h"

namespace xlbctl {
namespace {

const Json* field(const Json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

// An unsigned field as text, "-" when missing or null (an index not yet applied).
std::string uint_text(const Json& j, std::string_view key) {
  const Json* f = field(j, key);
  if (f == nullptr || !f->is_number()) return "-";
  if (f->is_number_unsigned() || f->is_number_integer()) return std::to_string(f->get<int64_t>());
  return std::to_string(f->get<double>());
}

std::string yes_no(bool v) { return v ? "yes" : "no"; }

std::string vip_flags(const Json& vip) {
  std::string out;
  for (const char* f : {"no_lru", "gue", "icmp_too_big", "no_rate_guard"}) {
    if (!bool_field(vip, f)) continue;
    std::string name = f;
    for (auto& c : name) c = c == '_' ? '-' : c;
    out += (out.empty() ? "" : ",") + name;
  }
  return out.empty() ? "-" : out;
}

const Json& array_or_empty(const Json* j) {
  static const Json kEmpty = Json::array();
  return j != nullptr && j->is_array() ? *j : kEmpty;
}

std::string millis(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f ms", seconds * 1e3);
  return buf;
}

std::string signed_text(int64_t v) { return (v > 0 ? "+" : "") + std::to_string(v); }

std::optional<double> optional_num(const Json& j, std::string_view key) {
  const Json* f = field(j, key);
  if (f == nullptr || !f->is_number()) return std::nullopt;
  return f->get<double>();
}

}  // namespace

std::string str_field(const Json& j, std::string_view key, std::string_view fallback) {
  const Json* f = field(j, key);
  return f != nullptr && f->is_string() ? f->get<std::string>() : std::string(fallback);
}

uint64_t uint_field(const Json& j, std::string_view key, uint64_t fallback) {
  const Json* f = field(j, key);
  if (f == nullptr || !f->is_number_integer()) return fallback;
  return f->is_number_unsigned() ? f->get<uint64_t>()
                                 : static_cast<uint64_t>(std::max<int64_t>(0, f->get<int64_t>()));
}

double num_field(const Json& j, std::string_view key, double fallback) {
  const Json* f = field(j, key);
  return f != nullptr && f->is_number() ? f->get<double>() : fallback;
}

bool bool_field(const Json& j, std::string_view key, bool fallback) {
  const Json* f = field(j, key);
  return f != nullptr && f->is_boolean() ? f->get<bool>() : fallback;
}

namespace {

// The discovery part of GET /v1/status: summary fields (aligned with the rest of the status)
// and, after them, merge notes and one row per source. A stale or failing source is marked so it
// stands out; its last good entries are still served.
using Fields = std::vector<std::pair<std::string, std::string>>;

std::string render_discovery(const Json* d, Fields& fields) {
  if (d == nullptr || !d->is_object()) {
    fields.push_back({"discovery", "not configured"});
    return "";
  }
  const Json& sources = array_or_empty(field(*d, "sources"));
  fields.push_back({"discovery", std::to_string(sources.size()) + " source(s), " +
                                     uint_text(*d, "discovered_backends") + " backend(s) in " +
                                     uint_text(*d, "discovered_vips") + " VIP(s), update " +
                                     uint_text(*d, "generation") + " (" +
                                     uint_text(*d, "update_errors") + " refused), debounce " +
                                     uint_text(*d, "debounce_ms") + " ms"});
  fields.push_back({"disc. error", or_dash(str_field(*d, "last_error"))});
  std::string out;
  for (const auto& note : array_or_empty(field(*d, "merge_notes"))) {
    if (note.is_string()) out += "note: " + note.get<std::string>() + "\n";
  }
  if (sources.empty()) return out;
  Table t({{"SOURCE"},
           {"TYPE"},
           {"PRIO", Align::kRight},
           {"STATE"},
           {"REVISION", Align::kRight},
           {"APPLIED", Align::kRight},
           {"REJECTED", Align::kRight},
           {"STALE", Align::kRight},
           {"DETAIL"}});
  for (const auto& src : sources) {
    std::string state = str_field(src, "state", "?");
    if (state == "stale" || state == "error") state += " (!)";
    std::string detail = str_field(src, "detail");
    const Json& problems = array_or_empty(field(src, "problems"));
    if (!problems.empty()) detail += " [" + std::to_string(problems.size()) + " broken file(s)]";
    t.add_row({str_field(src, "name", "?"), str_field(src, "type", "?"),
               uint_text(src, "priority"), state, uint_text(src, "revision"),
               uint_text(src, "events_applied"), uint_text(src, "events_rejected"),
               uint_text(src, "stale_total"), or_dash(detail)});
  }
  return out + "\n" + t.render();
}

}  // namespace

std::string render_status(const Json& s, std::string_view api, std::string_view version) {
  const uint64_t errors = uint_field(s, "reconcile_errors");
  std::string attach = str_field(s, "attach_mode", "-") + ", " + str_field(s, "attach_method", "-");
  if (uint_field(s, "prog_id") != 0) attach += ", program " + uint_text(s, "prog_id");
  Fields fields{
      {"xlbd", str_field(s, "version", "?") + " (xlbctl " + std::string(version) + ")"},
      {"api", std::string(api)},
      {"interface", str_field(s, "interface", "-")},
      {"attach", attach},
      {"pin dir", str_field(s, "pin_dir", "-")},
      {"adopted", yes_no(bool_field(s, "adopted"))},
      {"uptime", human_duration(num_field(s, "uptime_seconds", -1))},
      {"config", str_field(s, "config_file", "-")},
      {"reconciles", uint_text(s, "reconcile_total") + ", " + std::to_string(errors) +
                         " failed, last took " + millis(num_field(s, "last_reconcile_seconds"))},
      {"last error", or_dash(str_field(s, "last_error"))},
  };
  std::string tail = render_discovery(field(s, "discovery"), fields);
  return render_fields(fields) + tail;
}

std::string render_vip_list(const Json& vips) {
  if (!vips.is_array() || vips.empty()) return "no VIPs\n";
  Table t({{"VIP"},
           {"NAME"},
           {"HASH"},
           {"FLAGS"},
           {"RING", Align::kRight},
           {"BACKENDS", Align::kRight},
           {"ACTIVE", Align::kRight},
           {"PACKETS", Align::kRight},
           {"BYTES", Align::kRight}});
  for (const auto& v : vips) {
    const Json& backends = array_or_empty(field(v, "backends"));
    size_t active = 0;
    for (const auto& b : backends) active += str_field(b, "state") == "active" ? 1 : 0;
    t.add_row({str_field(v, "vip", "?"), or_dash(str_field(v, "name")), str_field(v, "hash", "-"),
               vip_flags(v), uint_text(v, "ring_size"), std::to_string(backends.size()),
               std::to_string(active), uint_text(v, "packets"),
               human_bytes(uint_field(v, "bytes"))});
  }
  return t.render();
}

namespace {

std::string render_backends_with_ring(const Json& backends, uint64_t ring_size) {
  Table t({{"ADDRESS"},
           {"WEIGHT", Align::kRight},
           {"STATE"},
           {"EFFECTIVE", Align::kRight},
           {"SLOTS", Align::kRight},
           {"RING SHARE", Align::kRight},
           {"PACKETS", Align::kRight},
           {"BYTES", Align::kRight}});
  for (const auto& b : backends) {
    std::string ring = "-";
    if (ring_size > 0 && field(b, "slots") != nullptr) {
      ring = percent(static_cast<double>(uint_field(b, "slots")) / static_cast<double>(ring_size));
    }
    t.add_row({str_field(b, "address", "?"), uint_text(b, "weight"), str_field(b, "state", "-"),
               uint_text(b, "effective_weight"), uint_text(b, "slots"), ring,
               uint_text(b, "packets"), human_bytes(uint_field(b, "bytes"))});
  }
  return t.render();
}

}  // namespace

std::string render_backends(const Json& backends) {
  if (backends.is_object()) return render_backends_with_ring(Json::array({backends}), 0);
  if (!backends.is_array() || backends.empty()) return "no backends\n";
  // The ring is fully assigned whenever one backend has a positive weight, so the slots add up
  // to its size; the list answer itself does not carry the size.
  uint64_t ring = 0;
  for (const auto& b : backends) ring += uint_field(b, "slots");
  return render_backends_with_ring(backends, ring);
}

std::string render_vip(const Json& v) {
  std::string ring = uint_text(v, "ring_size");
  if (const Json* r = field(v, "ring_size_requested"); r != nullptr && r->is_number()) {
    ring += " (requested " + uint_text(v, "ring_size_requested") + ")";
  }
  std::string out = render_fields({
      {"vip", str_field(v, "vip", "?")},
      {"name", or_dash(str_field(v, "name"))},
      {"hash", str_field(v, "hash", "-")},
      {"flags", vip_flags(v)},
      {"ring size", ring},
      {"index", uint_text(v, "index")},
      {"packets", uint_text(v, "packets")},
      {"bytes", human_bytes(uint_field(v, "bytes"))},
  });
  const Json& backends = array_or_empty(field(v, "backends"));
  if (backends.empty()) return out + "no backends\n";
  return out + "\n" + render_backends_with_ring(backends, uint_field(v, "ring_size"));
}

std::string render_health(const Json& health, double now_unix) {
  std::string out;
  // An xlbd from before health checks said so in one top-level field.
  if (auto checks = str_field(health, "checks"); !checks.empty()) {
    out += "health checks: " + checks + "\n";
  }
  const Json& vips = array_or_empty(field(health, "vips"));
  if (vips.empty()) return out + "no VIPs\n";
  for (const auto& v : vips) {
    std::string name = str_field(v, "name");
    out += "VIP " + str_field(v, "vip", "?") + (name.empty() ? "" : " (" + name + ")") +
           ": check " + str_field(v, "check", "-") +
           ", all down: " + str_field(v, "all_down", "-") + "\n";
    Table t({{"BACKEND"},
             {"STATE"},
             {"HEALTH"},
             {"WEIGHT", Align::kRight},
             {"EFFECTIVE", Align::kRight},
             {"RISE", Align::kRight},
             {"FALL", Align::kRight},
             {"CHECKS", Align::kRight},
             {"FAILED", Align::kRight},
             {"SINCE", Align::kRight},
             {"LAST RESULT"}});
    for (const auto& b : array_or_empty(field(v, "backends"))) {
      // "1/2": one good check of the two that bring it up; "-" without a check.
      auto progress = [&](const char* done, const char* of) -> std::string {
        if (uint_field(b, of) == 0) return "-";
        return uint_text(b, done) + "/" + uint_text(b, of);
      };
      const double since = num_field(b, "since");
      t.add_row({str_field(b, "address", "?"), str_field(b, "state", "-"),
                 str_field(b, "health", "-"), uint_text(b, "weight"),
                 uint_text(b, "effective_weight"), progress("rise_progress", "rise"),
                 progress("fall_progress", "fall"), uint_text(b, "checks"),
                 uint_text(b, "failures"),
                 since > 0 ? human_duration(std::max(0.0, now_unix - since)) : "-",
                 or_dash(str_field(b, "last_result"))});
    }
    out += t.rows() ? t.render(2) : "  no backends\n";
  }
  return out;
}

std::string render_plan(const Json& plan) {
  const uint64_t ring = uint_field(plan, "ring_size");
  std::string out = "plan for VIP " + str_field(plan, "vip", "?") + ", ring of " +
                    std::to_string(ring) + " slots (nothing was changed)\n";
  Table t({{"BACKEND"},
           {"SLOTS NOW", Align::kRight},
           {"SLOTS AFTER", Align::kRight},
           {"GAINED", Align::kRight},
           {"LOST", Align::kRight}});
  for (const auto& b : array_or_empty(field(plan, "backends"))) {
    t.add_row({str_field(b, "address", "?"), uint_text(b, "slots_before"),
               uint_text(b, "slots_after"),
               signed_text(static_cast<int64_t>(uint_field(b, "slots_gained"))),
               signed_text(-static_cast<int64_t>(uint_field(b, "slots_lost")))});
  }
  out += t.render();
  out += percent(num_field(plan, "moved_fraction"), 2) + " of new flows would move to another " +
         "backend (" + uint_text(plan, "slots_changed") + " of " + std::to_string(ring) +
         " slots change owner)\n";
  return out;
}

std::string render_lookup(const Json& lookup) {
  return render_fields({
      {"vip", str_field(lookup, "vip", "?")},
      {"from", str_field(lookup, "from", "?")},
      {"backend", str_field(lookup, "backend", "?")},
      {"index", uint_text(lookup, "backend_index")},
      {"decided by", bool_field(lookup, "from_table")
                         ? "the connection table (an established flow)"
                         : "the Maglev ring (no connection-table entry)"},
  });
}

std::string render_stats(const Json& stats, size_t bar_width) {
  std::string out;
  const Json& vips = array_or_empty(field(stats, "vips"));
  if (vips.empty()) out += "no VIPs\n";
  for (const auto& v : vips) {
    auto pps = optional_num(v, "packets_per_second");
    auto bps = optional_num(v, "bytes_per_second");
    std::string name = str_field(v, "name");
    out += "VIP " + str_field(v, "vip", "?") + (name.empty() ? "" : " (" + name + ")") + ": " +
           uint_text(v, "packets") + " packets, " + human_bytes(uint_field(v, "bytes"));
    if (pps && bps) out += "; " + human_rate(*pps) + " pps, " + human_rate(*bps * 8) + " bit/s";
    out += "\n";
    std::vector<Column> cols = {{"BACKEND"},
                                {"PACKETS", Align::kRight},
                                {"BYTES", Align::kRight},
                                {"SHARE", Align::kRight},
                                {"PPS", Align::kRight},
                                {"BIT/S", Align::kRight}};
    if (bar_width > 0) cols.push_back({"RATE"});
    Table t(std::move(cols));
    for (const auto& b : array_or_empty(field(v, "backends"))) {
      auto b_pps = optional_num(b, "packets_per_second");
      auto b_bps = optional_num(b, "bytes_per_second");
      std::vector<std::string> row = {
          str_field(b, "address", "?"),        uint_text(b, "packets"),
          human_bytes(uint_field(b, "bytes")), percent(num_field(b, "share")),
          b_pps ? human_rate(*b_pps) : "-",    b_bps ? human_rate(*b_bps * 8) : "-"};
      if (bar_width > 0) {
        // The bar shows where traffic goes now; without rates, where it went so far.
        auto share = optional_num(b, "rate_share");
        row.push_back(bar(share ? *share : num_field(b, "share"), bar_width));
      }
      t.add_row(std::move(row));
    }
    out += t.rows() ? t.render(2) : "  no backends\n";
  }
  if (const Json* c = field(stats, "counters"); c != nullptr && c->is_object()) {
    std::string line;
    for (const auto& [name, value] : c->items()) {
      if (value.is_number() && value.get<double>() != 0) {
        line += " " + name + "=" + uint_text(*c, name);
      }
    }
    out += "data plane counters:" + (line.empty() ? std::string(" all zero") : line) + "\n";
  }
  return out;
}

}  // namespace xlbctl
