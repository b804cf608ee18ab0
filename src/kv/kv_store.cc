#include "kv/kv_store.h"

namespace cairn::kv {

std::string EncodeCounter(int64_t value) {
  std::string out(8, '\0');
  auto v = static_cast<uint64_t>(value);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(v >> (8 * i));
  return out;
}

Result<int64_t> DecodeCounter(std::string_view value) {
  if (value.size() != 8) return Err(Code::kCorruption, "bad counter value");
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(value[i])) << (8 * i);
  return static_cast<int64_t>(v);
}

Result<std::vector<std::optional<std::string>>> KvStore::MultiGet(
    const std::vector<std::string>& keys) {
  std::vector<std::optional<std::string>> out;
  out.reserve(keys.size());
  for (const auto& k : keys) {
    auto v = Get(k);
    if (v) {
      out.emplace_back(std::move(*v));
    } else if (v.error().code() == Code::kNotFound) {
      out.emplace_back();
    } else {
      return Err(v.error());
    }
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> ScanRange(KvStore& kv,
                                                                   std::string_view begin,
                                                                   std::string_view end) {
  std::vector<std::pair<std::string, std::string>> out;
  auto it = kv.NewIterator(begin, end);
  for (it->Seek(begin); it->Valid() && it->key() < end; it->Next()) {
    out.emplace_back(std::string(it->key()), std::string(it->value()));
  }
  CAIRN_RETURN_IF_ERROR(it->status());
  return out;
}

}  // namespace cairn::kv
