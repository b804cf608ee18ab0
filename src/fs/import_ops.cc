// cairn import: mirrors the keys of an object store prefix as a tree of files under a directory,
// without copying data. Each file is an inode flagged remote plus an ObjectRef (import id, key,
// ETag); its bytes are fetched on first read (tier/tier_engine.h).
//
// The listing runs first (tier/import.h); then directories are created parents first, then files
// in batches of up to kBatch entries per directory, each batch one atomic namespace change. With
// refresh, a file whose ETag changed is replaced by a new inode with the new size, mtime and
// ETag (the old one, and its cached copy, go once nothing holds it), and files whose key
// disappeared are unlinked, as long as they are still imported (a file written to since is the
// user's and stays). Everything stays inside dest: names are single validated path components,
// created only under dest's subtree.
#include <dirent.h>
#include <fmt/format.h>

#include <map>
#include <unordered_map>
#include <unordered_set>

#include "common/logging.h"
#include "fs/file_system.h"
#include "fs/txn.h"
#include "tier/import.h"

namespace cairn::fs {
namespace {
constexpr size_t kBatch = 1000;

std::string JoinParts(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i) out += '/';
    out += parts[i];
  }
  return out;
}
}  // namespace

Result<ImportReport> FileSystem::Import(const Context& ctx, uint64_t dest, const std::string& url,
                                        bool refresh, int list_parallel,
                                        const ImportProgress& progress) {
  if (IsSnapIno(dest)) return Err(Code::kReadOnly, "snapshots are read-only");
  ImportReport report;
  {
    CAIRN_ASSIGN_OR_RETURN(meta::Inode d, meta_->GetInode(dest));
    if (!d.IsDir()) return Err(Code::kNotDir, "import destination is not a directory");
  }
  // One import per (url, dest): find an earlier one.
  CAIRN_ASSIGN_OR_RETURN(auto imports, kv::ScanRange(*kv_, meta::ImportPrefix(),
                                                     meta::PrefixEnd(meta::ImportPrefix())));
  meta::ImportRecord record;
  uint64_t max_id = 0;
  for (const auto& [key, value] : imports) {
    CAIRN_ASSIGN_OR_RETURN(meta::ImportRecord r, meta::DecodeImport(meta::KeyU64(key), value));
    max_id = std::max(max_id, r.id);
    if (r.dest_ino == dest && r.url == url) record = r;
  }
  if (record.id != 0 && !refresh) {
    return Err(Code::kExists, url + " is already imported here; use --refresh to update it");
  }
  if (record.id == 0 && refresh) {
    return Err(Code::kNotFound, "nothing was imported from " + url + " here; import it first");
  }
  if (record.id == 0) {
    // Check the URL before writing anything.
    CAIRN_ASSIGN_OR_RETURN(auto probe, tier::OpenObjectStore(url));
    (void)probe;
    record = {max_id + 1, url, dest};
    kv::WriteBatch batch;
    batch.Put(meta::ImportKey(record.id), meta::EncodeImport(record));
    CAIRN_RETURN_IF_ERROR(kv_->Write(batch, true));
    tier_->AddImport(record.id, url);
  }
  report.import_id = record.id;
  CAIRN_ASSIGN_OR_RETURN(auto store, tier_->ImportStore(record.id));

  if (progress) progress("listing", 0);
  CAIRN_ASSIGN_OR_RETURN(tier::ImportListing listing,
                         tier::ListForImport(*store, list_parallel, [&](uint64_t n) {
                           if (progress) progress("listing", n);
                         }));
  report.listed = listing.listed;
  report.skipped = std::move(listing.skipped);

  // Directories first, parents before children (the listing is sorted by key).
  std::unordered_map<std::string, uint64_t> dirs = {{"", dest}};
  std::vector<std::pair<uint64_t, std::string>> invalidate_entries;  // for the kernel, at the end
  std::unordered_set<uint64_t> new_dirs;  // the kernel knows nothing under these yet
  auto skip = [&](const tier::ImportEntry& e, std::string reason) {
    report.skipped.emplace_back(e.info.key, std::move(reason));
  };
  // The directory at parts[0..n); creates it (and records that) when missing.
  std::function<Result<uint64_t>(const std::vector<std::string>&, size_t)> ensure_dir =
      [&](const std::vector<std::string>& parts, size_t n) -> Result<uint64_t> {
    std::string path = JoinParts(parts, n);
    if (auto it = dirs.find(path); it != dirs.end()) return it->second;
    CAIRN_ASSIGN_OR_RETURN(uint64_t parent, ensure_dir(parts, n - 1));
    const std::string& name = parts[n - 1];
    auto existing = DentryFor(parent, nullptr, name);
    if (existing) {
      if (existing->type != DT_DIR) {
        return Err(Code::kExists, "'" + path + "' exists and is not a directory");
      }
      dirs[path] = existing->ino;
      return existing->ino;
    }
    if (existing.error().code() != Code::kNotFound) return Err(existing.error());
    Result<struct stat> made = MakeNode(ctx, parent, name, S_IFDIR | 0755, 0, {});
    if (!made) return Err(made.error());
    Forget(made->st_ino, 1);  // MakeNode counts a kernel lookup; nothing holds this one
    ++report.dirs_created;
    if (!new_dirs.count(parent)) invalidate_entries.emplace_back(parent, name);
    new_dirs.insert(made->st_ino);
    dirs[path] = made->st_ino;
    return static_cast<uint64_t>(made->st_ino);
  };

  // Files grouped by parent directory, in batches.
  std::map<uint64_t, std::vector<const tier::ImportEntry*>> by_dir;
  std::unordered_set<std::string> listed_keys;
  uint64_t prepared = 0;
  for (const auto& e : listing.entries) {
    const size_t dir_parts = e.dir_marker ? e.parts.size() : e.parts.size() - 1;
    auto parent = ensure_dir(e.parts, dir_parts);
    if (!parent) {
      skip(e, parent.error().message());
      continue;
    }
    if (e.dir_marker) continue;
    listed_keys.insert(e.info.key);
    by_dir[*parent].push_back(&e);
    if (progress && ++prepared % 10000 == 0) progress("directories", prepared);
  }

  uint64_t applied = 0;
  for (const auto& [parent, entries] : by_dir) {
    for (size_t begin = 0; begin < entries.size(); begin += kBatch) {
      const size_t end = std::min(entries.size(), begin + kBatch);
      // One batch, one Txn. It may run more than once (fs/txn.h), so it collects its report in
      // `b` and the caller takes that only from the run that committed.
      struct BatchReport {
        ImportReport counts;
        std::vector<std::pair<std::string, std::string>> skipped;
        std::vector<std::pair<uint64_t, std::string>> invalidate;
        std::vector<meta::Inode> created;
      } b;
      Status batch_status = RunOp([&](Txn& txn) -> Status {
        b = BatchReport{};
        auto skip_entry = [&](const tier::ImportEntry& e, std::string reason) {
          b.skipped.emplace_back(e.info.key, std::move(reason));
        };
        CAIRN_ASSIGN_OR_RETURN(meta::Inode * dir, txn.Get(parent));
        if (!dir->IsDir() || dir->nlink == 0) {
          return Status(Code::kNotFound, "a directory of the import was removed meanwhile");
        }
        for (size_t i = begin; i < end; ++i) {
          const tier::ImportEntry& e = *entries[i];
          const std::string& name = e.parts.back();
          const meta::Timespec mtime{e.info.mtime, 0};
          meta::ObjectRef ref{record.id, e.info.key, e.info.etag};
          bool replaced = false;
          auto existing = txn.GetDentry(parent, name);
          if (existing) {
            if (existing->type != DT_REG) {
              skip_entry(e, "exists and is not a regular file");
              continue;
            }
            CAIRN_ASSIGN_OR_RETURN(meta::Inode * inode, txn.Get(existing->ino));
            auto old_ref = inode->is_remote ? kv_->Get(meta::ObjectRefKey(inode->ino))
                                            : Result<std::string>(std::unexpected(Status()));
            auto old = old_ref ? meta::DecodeObjectRef(*old_ref)
                               : Result<meta::ObjectRef>(std::unexpected(Status()));
            if (!old || old->import_id != record.id) {
              skip_entry(e, "exists and is not a file of this import");
              continue;
            }
            if (old->etag == ref.etag && old->key == ref.key) {
              ++b.counts.files_unchanged;
              continue;
            }
            // Changed: the entry gets a new inode (as if replaced by rename), so the kernel
            // drops what it cached of the old one; the old inode goes once nothing holds it.
            --inode->nlink;
            inode->ctime = meta::Now();
            if (inode->nlink == 0)
              txn.batch().Put(meta::OrphanKey(inode->ino), meta::OrphanValue(super_.cluster.node));
            ++b.counts.files_updated;
            replaced = true;
          } else if (existing.error().code() != Code::kNotFound) {
            return existing.error();
          }
          CAIRN_ASSIGN_OR_RETURN(uint64_t ino, inos_->Next());
          if (ino > kMaxLiveIno) return Status(Code::kNoSpace, "out of inode numbers");
          meta::Inode inode;
          inode.ino = ino;
          inode.mode = S_IFREG | 0644;
          inode.uid = ctx.uid;
          inode.gid = dir->mode & S_ISGID ? dir->gid : ctx.gid;
          inode.nlink = 1;
          inode.no_xattrs = true;
          inode.size = e.info.size;
          inode.is_remote = true;
          inode.atime = inode.mtime = mtime;
          inode.ctime = meta::Now();
          txn.batch().Put(meta::InodeKey(ino), meta::EncodeInode(inode));
          txn.batch().Put(meta::ObjectRefKey(ino), meta::EncodeObjectRef(ref));
          txn.PutDentry(parent, name, {ino, meta::DirentType(inode.mode)});
          txn.Account(nullptr, &inode);
          b.created.push_back(std::move(inode));
          if (!new_dirs.count(parent)) b.invalidate.emplace_back(parent, name);
          if (!replaced) ++b.counts.files_created;
          b.counts.bytes += e.info.size;
        }
        dir->mtime = dir->ctime = meta::Now();
        return txn.Commit();
      });
      CAIRN_RETURN_IF_ERROR(batch_status);
      report.files_unchanged += b.counts.files_unchanged;
      report.files_updated += b.counts.files_updated;
      report.files_created += b.counts.files_created;
      report.bytes += b.counts.bytes;
      for (auto& s : b.skipped) report.skipped.push_back(std::move(s));
      for (auto& i : b.invalidate) invalidate_entries.push_back(std::move(i));
      applied += end - begin;
      if (progress) progress("creating", applied);
    }
  }

  if (refresh) {
    // Files of this import whose key is gone from the listing.
    std::vector<std::pair<uint64_t, std::string>> gone;
    std::vector<uint64_t> todo = {dest};
    while (!todo.empty()) {
      const uint64_t dir = todo.back();
      todo.pop_back();
      std::string after;
      for (;;) {
        CAIRN_ASSIGN_OR_RETURN(auto page, meta_->ListDir(dir, after, 4096));
        if (page.empty()) break;
        for (const auto& [name, d] : page) {
          if (d.type == DT_DIR) {
            todo.push_back(d.ino);
            continue;
          }
          if (d.type != DT_REG) continue;
          auto value = kv_->Get(meta::ObjectRefKey(d.ino));
          if (!value) continue;  // not imported (or written to since)
          auto ref = meta::DecodeObjectRef(*value);
          if (ref && ref->import_id == record.id && !listed_keys.count(ref->key)) {
            gone.emplace_back(dir, name);
          }
        }
        after = page.back().first;
      }
    }
    for (const auto& [dir, name] : gone) {
      Status st = RemoveEntry(dir, name, false);
      if (!st.ok() && st.code() != Code::kNotFound) return Err(st);
      if (st.ok()) ++report.files_deleted;
      invalidate_entries.emplace_back(dir, name);
    }
  }
  CAIRN_RETURN_IF_ERROR(kv_->SyncWal());

  // The kernel may cache entries, attributes and pages of what changed.
  if (kernel_) {
    for (const auto& [parent, name] : invalidate_entries) kernel_->InvalidateEntry(parent, name);
    std::unordered_set<uint64_t> parents;
    for (const auto& [parent, name] : invalidate_entries) parents.insert(parent);
    for (uint64_t p : parents) kernel_->InvalidateInode(p);
  }
  return report;
}

}  // namespace cairn::fs
