// cairn fsck: an offline check of a data directory. It reads every metadata record and every
// extent's bytes; it changes nothing.
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <map>
#include <set>

#include "common/coding.h"
#include "data/segment_store.h"
#include "fs/cluster.h"
#include "fs/file_system.h"
#include "fs/options.h"
#include "meta/meta_store.h"

namespace cairn::fs {
namespace {

struct InodeInfo {
  meta::Inode inode;
  uint64_t links = 0;    // dentries naming it
  uint64_t subdirs = 0;  // child directories (for directories)
  uint64_t mapped_end = 0;
  uint64_t stored = 0;  // bytes its extents map
};

}  // namespace

Result<FsckReport> Fsck(const std::string& data_dir) {
  CAIRN_ASSIGN_OR_RETURN(Superblock super, ReadSuperblock(data_dir));
  CAIRN_ASSIGN_OR_RETURN(int lock_fd, LockDataDir(data_dir));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{lock_fd};

  FsckReport r;
  auto problem = [&r](std::string s) { r.problems.push_back(std::move(s)); };
  CAIRN_ASSIGN_OR_RETURN(auto kv, OpenMetaStore(data_dir, super));
  data::SegmentStoreOptions seg_opts;
  seg_opts.segment_size = super.segment_size;
  seg_opts.read_only = true;  // and, in a cluster, every node's segments
  seg_opts.node = super.cluster.node;
  CAIRN_ASSIGN_OR_RETURN(seg_opts.backend, OpenSegmentBackend(super));
  CAIRN_ASSIGN_OR_RETURN(auto segments, data::SegmentStore::Open(data_dir, kv.get(), seg_opts));

  std::map<uint64_t, InodeInfo> inodes;
  std::set<uint64_t> orphans;
  auto it = kv->NewIterator();
  for (it->Seek(""); it->Valid(); it->Next()) {
    std::string_view key = it->key();
    const char tag = key.empty() ? 0 : key[0];
    if (tag == 'I' && key.size() == 9) {
      auto inode = meta::DecodeInode(meta::KeyU64(key), it->value());
      if (!inode) {
        problem(fmt::format("inode {}: {}", meta::KeyU64(key), inode.error().ToString()));
        continue;
      }
      ++r.inodes;
      inodes[inode->ino].inode = std::move(*inode);
    } else if (tag == 'O' && key.size() == 9) {
      orphans.insert(meta::KeyU64(key));
    }
  }
  CAIRN_RETURN_IF_ERROR(it->status());

  auto root = inodes.find(meta::kRootIno);
  if (root == inodes.end() || !root->second.inode.IsDir()) problem("the root directory is missing");

  for (it->Seek("D"); it->Valid() && it->key()[0] == 'D'; it->Next()) {
    ++r.dentries;
    const uint64_t parent = meta::KeyU64(it->key());
    const std::string name(meta::KeyName(it->key()));
    auto d = meta::DecodeDentry(it->value());
    if (!d) {
      problem(fmt::format("entry {}/{}: bad record", parent, name));
      continue;
    }
    auto p = inodes.find(parent);
    if (p == inodes.end() || !p->second.inode.IsDir()) {
      problem(fmt::format("entry '{}' lives in {} which is not a directory", name, parent));
    }
    auto c = inodes.find(d->ino);
    if (c == inodes.end()) {
      problem(fmt::format("entry '{}' in directory {} points to missing inode {}", name, parent,
                          d->ino));
      continue;
    }
    ++c->second.links;
    if (d->type != meta::DirentType(c->second.inode.mode)) {
      problem(fmt::format("entry '{}' in directory {} has the wrong type", name, parent));
    }
    if (c->second.inode.IsDir()) {
      if (p != inodes.end()) ++p->second.subdirs;
      if (c->second.inode.parent != parent) {
        problem(fmt::format("directory {} ('{}') records parent {} but lives in {}", d->ino, name,
                            c->second.inode.parent, parent));
      }
    }
  }

  std::map<uint64_t, uint64_t> segment_sizes;
  std::set<uint64_t> evicted;
  for (const auto& s : segments->List()) {
    segment_sizes[s.id] = s.size;
    if (s.state == meta::SegmentState::kEvicted) evicted.insert(s.id);
  }
  r.segments = segment_sizes.size();
  std::string buf;
  std::map<uint64_t, int64_t> live;  // segment -> bytes extents map
  for (it->Seek("E"); it->Valid() && it->key()[0] == 'E'; it->Next()) {
    ++r.extents;
    const uint64_t ino = meta::KeyU64(it->key());
    const uint64_t offset = meta::KeyU64(it->key(), true);
    auto e = meta::DecodeExtent(offset, it->value());
    if (!e) {
      problem(fmt::format("inode {}: bad extent record at offset {}", ino, offset));
      continue;
    }
    auto c = inodes.find(ino);
    if (c == inodes.end()) {
      problem(fmt::format("extent at offset {} belongs to missing inode {}", offset, ino));
      continue;
    }
    InodeInfo& info = c->second;
    if (!info.inode.IsReg() || info.inode.is_inline) {
      problem(fmt::format("inode {} has an extent but holds no segment data", ino));
    }
    if (e->file_offset < info.mapped_end) {
      problem(fmt::format("inode {}: extents overlap at offset {}", ino, e->file_offset));
    }
    info.mapped_end = e->end();
    info.stored += e->length;
    live[e->segment_id] += e->length;
    if (e->end() > info.inode.size) {
      problem(fmt::format("inode {}: extent at {} reaches past the end of the file", ino, offset));
    }
    auto seg = segment_sizes.find(e->segment_id);
    if (seg == segment_sizes.end()) {
      problem(fmt::format("inode {}: extent at {} points to missing segment {}", ino, offset,
                          e->segment_id));
      continue;
    }
    if (evicted.count(e->segment_id)) {
      // Only in the object store: checked by checksum when read, not downloaded here.
      r.bytes_remote += e->length;
      continue;
    }
    buf.resize(e->length);
    Status st = segments->Read(*e, 0, e->length, buf.data());
    if (!st.ok()) {
      problem(fmt::format("inode {}: data at offset {}: {}", ino, offset, st.ToString()));
    } else {
      r.bytes_verified += e->length;
    }
  }
  CAIRN_RETURN_IF_ERROR(it->status());

  for (const auto& [ino, info] : inodes) {
    if (!info.inode.is_remote) continue;
    auto ref = kv->Get(meta::ObjectRefKey(ino));
    if (!ref || !meta::DecodeObjectRef(*ref)) {
      problem(fmt::format("imported inode {} has no valid object reference", ino));
    }
  }

  for (it->Seek("X"); it->Valid() && it->key()[0] == 'X'; it->Next()) {
    if (!inodes.contains(meta::KeyU64(it->key()))) {
      problem(fmt::format("extended attribute of missing inode {}", meta::KeyU64(it->key())));
    }
  }
  CAIRN_RETURN_IF_ERROR(it->status());

  for (const auto& [ino, info] : inodes) {
    const bool orphan = orphans.contains(ino);
    if (info.inode.IsDir()) {
      uint64_t want = info.inode.nlink == 0 && orphan ? 0 : 2 + info.subdirs;
      if (ino != meta::kRootIno && info.links == 0 && !orphan) {
        problem(fmt::format("directory {} is not reachable from any directory", ino));
      } else if (info.inode.nlink != want && !(orphan && info.links == 0)) {
        problem(fmt::format("directory {} has link count {}, expected {}", ino, info.inode.nlink,
                            want));
      }
    } else if (info.links == 0 && !orphan) {
      problem(fmt::format("inode {} is not reachable from any directory", ino));
    } else if (info.inode.nlink != info.links) {
      problem(fmt::format("inode {} has link count {} but {} directory entries", ino,
                          info.inode.nlink, info.links));
    }
    if (orphan)
      r.notes.push_back(
          fmt::format("inode {} was unlinked while open; reclaimed at the next mount", ino));
  }
  for (uint64_t ino : orphans) {
    if (!inodes.contains(ino))
      r.notes.push_back(fmt::format("stale orphan record for inode {}", ino));
  }

  // The totals and live bytes that a mount reads instead of scanning: they must be what this scan
  // counted. (A file system that has not been mounted since they were introduced has none yet.)
  auto version = kv->Get(meta::CounterKey(meta::kAccountingVersionKey));
  if (version) {
    Accounting counted;
    for (const auto& [ino, info] : inodes) {
      counted.Add(nullptr, &info.inode);
      if (info.inode.IsReg() && info.inode.stored != info.stored) {
        problem(fmt::format("inode {} records {} stored bytes, its extents map {}", ino,
                            info.inode.stored, info.stored));
      }
    }
    meta::MetaStore meta(kv.get());
    auto check = [&](std::string_view name, int64_t want) {
      auto have = meta.ReadTotal(name);
      if (!have) {
        problem(fmt::format("total {}: {}", name, have.error().ToString()));
        return;
      }
      if (*have != want)
        problem(fmt::format("total {} is {}, the records count {}", name, *have, want));
    };
    check(meta::kTotalFiles, counted.files);
    check(meta::kTotalDirectories, counted.directories);
    check(meta::kTotalSymlinks, counted.symlinks);
    check(meta::kTotalBytes, counted.bytes);
    check(meta::kTotalInlineFiles, counted.inline_files);
    check(meta::kTotalInlineBytes, counted.inline_bytes);
    std::map<uint64_t, int64_t> recorded;
    for (it->Seek(meta::LivePrefix()); it->Valid() && it->key()[0] == 'L'; it->Next()) {
      auto d = kv::DecodeCounter(it->value());
      if (!d) {
        problem(fmt::format("live bytes of segment {}: bad value", meta::KeyU64(it->key())));
        continue;
      }
      recorded[meta::KeyU64(it->key())] = *d;
    }
    CAIRN_RETURN_IF_ERROR(it->status());
    for (const auto& [seg, size] : segment_sizes) {
      const int64_t want = live.contains(seg) ? live[seg] : 0;
      const int64_t have = recorded.contains(seg) ? recorded[seg] : 0;
      if (have != want) {
        problem(fmt::format("segment {} records {} live bytes, extents map {}", seg, have, want));
      }
    }
  } else if (version.error().code() != Code::kNotFound) {
    return Err(version.error());
  } else {
    r.notes.push_back("no persisted totals yet: the next mount counts them once");
  }

  // Segment files the metadata does not know: a crash between creating a segment and recording
  // it. They hold nothing any file points at.
  if (DIR* d = ::opendir((data_dir + "/segments").c_str())) {
    while (struct dirent* ent = ::readdir(d)) {
      std::string n = ent->d_name;
      if (n.size() != 20 || !n.ends_with(".seg")) continue;
      uint64_t id = std::strtoull(n.substr(0, 16).c_str(), nullptr, 16);
      if (!segment_sizes.contains(id)) r.notes.push_back("segment file " + n + " is not recorded");
    }
    ::closedir(d);
  }
  return r;
}

}  // namespace cairn::fs
