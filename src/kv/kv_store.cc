#include "kv/kv_store.h"

namespace cairn::kv {

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
