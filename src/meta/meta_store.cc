#include "meta/meta_store.h"

#include "common/coding.h"

namespace cairn::meta {

IdAllocator::IdAllocator(kv::KvStore* kv, std::string counter_name, uint64_t first)
    : kv_(kv), key_(CounterKey(counter_name)), next_(first), limit_(first) {}

Status IdAllocator::Load() {
  auto v = kv_->Get(key_);
  if (!v) {
    if (v.error().code() == Code::kNotFound) return Status::Ok();
    return v.error();
  }
  if (v->size() != 8) return Status(Code::kCorruption, "bad counter " + key_);
  std::lock_guard lock(mu_);
  next_ = limit_ = DecodeFixed64(v->data());
  return Status::Ok();
}

Result<uint64_t> ReserveIds(kv::KvStore* kv, const std::string& key, uint64_t first,
                            uint64_t count) {
  for (;;) {
    auto v = kv->Get(key);
    if (!v && v.error().code() != Code::kNotFound) return Err(v.error());
    if (v && v->size() != 8) return Err(Code::kCorruption, "bad counter " + key);
    const uint64_t start = v ? std::max(first, DecodeFixed64(v->data())) : first;
    kv::WriteBatch batch;
    batch.Expect(key, v ? std::optional<std::string>(*v) : std::nullopt);
    std::string value;
    PutFixed64(&value, start + count);
    batch.Put(key, value);
    Status st = kv->Write(batch, /*sync=*/true);
    if (st.ok()) return start;
    if (st.code() != Code::kConflict) return Err(st);
  }
}

Result<uint64_t> IdAllocator::Next() {
  std::lock_guard lock(mu_);
  if (next_ >= limit_) {
    // Reserved from the stored counter, not from next_: in a cluster, other nodes reserve too.
    CAIRN_ASSIGN_OR_RETURN(uint64_t start, ReserveIds(kv_, key_, next_, kBlock));
    next_ = start;
    limit_ = start + kBlock;
  }
  return next_++;
}

Result<int64_t> MetaStore::ReadTotal(std::string_view name) {
  const std::string base = CounterKey(name);
  int64_t total = 0;
  auto it = kv_->NewIterator(base, base + "A");  // the key and its "@..." shards
  for (it->Seek(base); it->Valid(); it->Next()) {
    if (it->key() != base && it->key()[base.size()] != '@') continue;
    CAIRN_ASSIGN_OR_RETURN(int64_t v, kv::DecodeCounter(it->value()));
    total += v;
  }
  CAIRN_RETURN_IF_ERROR(it->status());
  return total;
}

Result<Inode> MetaStore::GetInode(uint64_t ino) {
  auto v = kv_->Get(InodeKey(ino));
  if (!v) return Err(v.error());
  return DecodeInode(ino, *v);
}

Result<Dentry> MetaStore::GetDentry(uint64_t parent, std::string_view name) {
  auto v = kv_->Get(DentryKey(parent, name));
  if (!v) return Err(v.error());
  return DecodeDentry(*v);
}

Result<std::vector<std::pair<std::string, Dentry>>> MetaStore::ListDir(uint64_t dir,
                                                                       std::string_view after,
                                                                       size_t limit) {
  std::vector<std::pair<std::string, Dentry>> out;
  std::string prefix = DentryPrefix(dir);
  std::string end = PrefixEnd(prefix);
  auto it = kv_->NewIterator(prefix, end);
  if (after.empty()) {
    it->Seek(prefix);
  } else {
    std::string from = DentryKey(dir, after);
    it->Seek(from);
    if (it->Valid() && it->key() == from) it->Next();
  }
  for (; it->Valid() && it->key() < end && out.size() < limit; it->Next()) {
    CAIRN_ASSIGN_OR_RETURN(Dentry d, DecodeDentry(it->value()));
    out.emplace_back(std::string(KeyName(it->key())), d);
  }
  CAIRN_RETURN_IF_ERROR(it->status());
  return out;
}

Result<bool> MetaStore::DirIsEmpty(uint64_t dir) {
  CAIRN_ASSIGN_OR_RETURN(auto entries, ListDir(dir, "", 1));
  return entries.empty();
}

Result<std::vector<Extent>> MetaStore::GetExtents(uint64_t ino, uint64_t begin, uint64_t end) {
  std::vector<Extent> out;
  if (begin >= end) return out;
  std::string prefix = ExtentPrefix(ino);
  std::string end_key = ExtentKey(ino, end);
  auto it = kv_->NewIterator(prefix, PrefixEnd(prefix));
  if (begin == 0) {
    // From the start of the file (whole-file reads, the native client's index): no extent starts
    // before it, and a forward seek costs half a backward one.
    it->Seek(prefix);
  } else {
    // The extent that starts at or before `begin` may still cover it.
    it->SeekForPrev(ExtentKey(ino, begin));
    if (it->Valid() && it->key().starts_with(prefix)) {
      CAIRN_ASSIGN_OR_RETURN(Extent e, DecodeExtent(KeyU64(it->key(), true), it->value()));
      if (e.end() > begin) out.push_back(std::move(e));
      it->Next();
    } else {
      it->Seek(ExtentKey(ino, begin));
    }
  }
  for (; it->Valid() && it->key() < end_key; it->Next()) {
    CAIRN_ASSIGN_OR_RETURN(Extent e, DecodeExtent(KeyU64(it->key(), true), it->value()));
    out.push_back(std::move(e));
  }
  CAIRN_RETURN_IF_ERROR(it->status());
  return out;
}

std::unique_ptr<kv::Iterator> MetaStore::NewExtentIterator() {
  const std::string all = ExtentPrefix(0).substr(0, 1);  // the extent records' tag
  return kv_->NewIterator(all, PrefixEnd(all));
}

Result<std::vector<Extent>> MetaStore::AllExtents(kv::Iterator& it, uint64_t ino) {
  std::vector<Extent> out;
  const std::string prefix = ExtentPrefix(ino);
  for (it.Seek(prefix); it.Valid() && it.key().starts_with(prefix); it.Next()) {
    CAIRN_ASSIGN_OR_RETURN(Extent e, DecodeExtent(KeyU64(it.key(), true), it.value()));
    out.push_back(std::move(e));
  }
  CAIRN_RETURN_IF_ERROR(it.status());
  return out;
}

Result<ObjectRef> MetaStore::GetObjectRef(uint64_t ino) {
  CAIRN_ASSIGN_OR_RETURN(std::string value, kv_->Get(ObjectRefKey(ino)));
  return DecodeObjectRef(value);
}

Result<std::string> MetaStore::GetXattr(uint64_t ino, std::string_view name) {
  return kv_->Get(XattrKey(ino, name));
}

Result<std::vector<std::string>> MetaStore::ListXattrs(uint64_t ino) {
  std::string prefix = XattrPrefix(ino);
  CAIRN_ASSIGN_OR_RETURN(auto kvs, kv::ScanRange(*kv_, prefix, PrefixEnd(prefix)));
  std::vector<std::string> out;
  for (auto& [k, v] : kvs) out.emplace_back(KeyName(k));
  return out;
}

Result<std::vector<SegmentRecord>> MetaStore::ListSegments() {
  std::string prefix = SegmentPrefix();
  CAIRN_ASSIGN_OR_RETURN(auto kvs, kv::ScanRange(*kv_, prefix, PrefixEnd(prefix)));
  std::vector<SegmentRecord> out;
  for (auto& [k, v] : kvs) {
    CAIRN_ASSIGN_OR_RETURN(SegmentRecord s, DecodeSegment(KeyU64(k), v));
    out.push_back(s);
  }
  return out;
}

}  // namespace cairn::meta
