#include "server/dataset_index.h"

#include <fmt/format.h>

namespace cairn::server {
namespace {

constexpr char kHex[] = "0123456789abcdef";

int FromHex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

nlohmann::json EncodeIndexedFile(const fs::FileSystem::IndexedFile& f) {
  std::string hex;
  hex.reserve(f.inline_data.size() * 2);
  for (unsigned char ch : f.inline_data) {
    hex += kHex[ch >> 4];
    hex += kHex[ch & 15];
  }
  nlohmann::json extents = nlohmann::json::array();
  for (const auto& e : f.extents) {
    extents.push_back(nlohmann::json::array(
        {e.file_offset, e.segment_id, e.blob_offset, e.blob_length, e.skip, e.length, e.crcs}));
  }
  return nlohmann::json::array(
      {f.path, f.ino, f.size, f.mount_only, std::move(hex), std::move(extents), f.etag});
}

Result<fs::FileSystem::IndexedFile> DecodeIndexedFile(const nlohmann::json& j) {
  fs::FileSystem::IndexedFile f;
  try {
    f.path = j.at(0).get<std::string>();
    f.ino = j.at(1).get<uint64_t>();
    f.size = j.at(2).get<uint64_t>();
    f.mount_only = j.at(3).get<bool>();
    const std::string hex = j.at(4).get<std::string>();
    if (hex.size() % 2) throw std::invalid_argument("odd inline hex");
    f.inline_data.reserve(hex.size() / 2);
    for (size_t i = 0; i < hex.size(); i += 2) {
      const int hi = FromHex(hex[i]), lo = FromHex(hex[i + 1]);
      if (hi < 0 || lo < 0) throw std::invalid_argument("bad inline hex");
      f.inline_data.push_back(static_cast<char>(hi << 4 | lo));
    }
    for (const auto& x : j.at(5)) {
      meta::Extent e;
      e.file_offset = x.at(0).get<uint64_t>();
      e.segment_id = x.at(1).get<uint64_t>();
      e.blob_offset = x.at(2).get<uint64_t>();
      e.blob_length = x.at(3).get<uint32_t>();
      e.skip = x.at(4).get<uint32_t>();
      e.length = x.at(5).get<uint32_t>();
      e.crcs = x.at(6).get<std::vector<uint32_t>>();
      const uint64_t chunks = (e.blob_length + meta::kChunkSize - 1) / meta::kChunkSize;
      if (e.crcs.size() != chunks || static_cast<uint64_t>(e.skip) + e.length > e.blob_length) {
        throw std::invalid_argument("inconsistent extent");
      }
      f.extents.push_back(std::move(e));
    }
    if (j.size() > 6) f.etag = j.at(6).get<std::string>();
  } catch (const std::exception& e) {
    return Err(Code::kCorruption, fmt::format("dataset index entry: {}", e.what()));
  }
  return f;
}

}  // namespace cairn::server
