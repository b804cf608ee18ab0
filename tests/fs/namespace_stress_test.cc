// Namespace changes in parallel: many threads creating, renaming across directories, exchanging,
// linking, unlinking, making, moving and removing directories at once, all in the same shared
// directories, while two more threads move directories into each other (loops must be refused).
// Each worker owns its names, so the end state is the sum of what each did: the test checks the
// tree against that model, then fsck, then the same again after a reopen.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "common/metrics.h"
#include "fs/file_system.h"
#include "fs/options.h"

namespace cairn::fs {
namespace {

constexpr uint64_t kRoot = meta::kRootIno;

// What one worker believes it made: its names (directory inode, name) and the files they name.
struct Model {
  std::map<std::pair<uint64_t, std::string>, int> links;         // -> file id
  std::map<int, std::string> contents;                           // file id -> bytes
  std::map<uint64_t, std::pair<uint64_t, std::string>> subdirs;  // own dir ino -> (parent, name)
};

class NamespaceStressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cairn-nsstress-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    FormatOptions fo;
    fo.segment_size = 1 << 20;
    ASSERT_TRUE(Format(dir_, fo).ok());
    Open();
  }
  void TearDown() override {
    fs_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    fs_.reset();
    MountOptions mo;
    mo.compaction_interval_s = 0;
    auto f = FileSystem::Open(dir_, mo);
    ASSERT_TRUE(f) << f.error().ToString();
    fs_ = std::move(*f);
  }
  uint64_t Mkdir(uint64_t parent, const std::string& name) {
    auto st = fs_->Mkdir(ctx_, parent, name, 0755);
    EXPECT_TRUE(st) << name << ": " << st.error().ToString();
    return st ? st->st_ino : 0;
  }

  // Every entry of the tree: (directory, name) -> inode; checks that each directory is reached
  // once, through exactly one name, and that its ".." says where.
  std::map<std::pair<uint64_t, std::string>, uint64_t> Walk() {
    std::map<std::pair<uint64_t, std::string>, uint64_t> out;
    std::set<uint64_t> seen = {kRoot};
    std::vector<std::pair<uint64_t, uint64_t>> todo = {{kRoot, kRoot}};  // directory, parent
    while (!todo.empty()) {
      const auto [dir, parent] = todo.back();
      todo.pop_back();
      auto h = fs_->OpenDir(dir);
      EXPECT_TRUE(h) << h.error().ToString();
      if (!h) continue;
      auto entries = fs_->DirHandle(*h);
      EXPECT_TRUE(entries);
      for (const auto& e : **entries) {
        if (e.name == ".") continue;
        if (e.name == "..") {
          EXPECT_EQ(e.ino, parent) << "'..' of directory " << dir;
          continue;
        }
        if (dir == kRoot && e.name == ".snapshots") continue;
        out[{dir, e.name}] = e.ino;
        if (e.type == DT_DIR) {
          EXPECT_TRUE(seen.insert(e.ino).second) << "directory " << e.ino << " reached twice";
          todo.emplace_back(e.ino, dir);
        }
      }
      fs_->ReleaseDir(*h);
    }
    return out;
  }

  std::string ReadAll(uint64_t ino) {
    auto st = fs_->GetAttr(ino);
    EXPECT_TRUE(st);
    if (!st) return {};
    std::string out(static_cast<size_t>(st->st_size), '\0');
    auto n = fs_->Read(ino, 0, out.size(), out.data());
    EXPECT_TRUE(n) << n.error().ToString();
    out.resize(n ? *n : 0);
    return out;
  }

  void Check(const std::vector<Model>& models, const std::vector<uint64_t>& hot) {
    auto tree = Walk();
    std::map<uint64_t, size_t> links_per_ino;
    for (const auto& [key, ino] : tree) ++links_per_ino[ino];
    size_t expected_entries = hot.size();
    for (size_t t = 0; t < models.size(); ++t) {
      const Model& m = models[t];
      expected_entries += m.links.size() + m.subdirs.size();
      std::map<int, uint64_t> ino_of;
      for (const auto& [key, id] : m.links) {
        auto it = tree.find(key);
        ASSERT_NE(it, tree.end()) << "worker " << t << " lost " << key.first << "/" << key.second;
        auto [known, fresh] = ino_of.emplace(id, it->second);
        EXPECT_EQ(known->second, it->second) << "links of one file name different inodes";
        if (fresh) {
          EXPECT_EQ(ReadAll(it->second), m.contents.at(id)) << key.second;
        }
      }
      for (const auto& [id, ino] : ino_of) {
        size_t expected_links = 0;
        for (const auto& [key, other] : m.links) expected_links += other == id;
        EXPECT_EQ(links_per_ino[ino], expected_links);
        auto st = fs_->GetAttr(ino);
        ASSERT_TRUE(st);
        EXPECT_EQ(st->st_nlink, expected_links);
      }
      for (const auto& [ino, where] : m.subdirs) {
        auto it = tree.find(where);
        ASSERT_NE(it, tree.end()) << "worker " << t << " lost directory " << where.second;
        EXPECT_EQ(it->second, ino);
      }
    }
    // Nothing more than the models and the shared directories (the fixed ones are in `hot`).
    EXPECT_EQ(tree.size(), expected_entries);
  }

  std::string dir_;
  Context ctx_{0, 0};
  std::unique_ptr<FileSystem> fs_;
};

TEST_F(NamespaceStressTest, ParallelChangesMatchTheModelAndFsck) {
  // Shared directories, some nested; newer inodes sort higher, so renames between them take
  // their locks in both orders.
  std::vector<uint64_t> shared;
  for (int i = 0; i < 6; ++i) shared.push_back(Mkdir(kRoot, "d" + std::to_string(i)));
  shared.push_back(Mkdir(shared[0], "nested"));
  shared.push_back(Mkdir(shared[3], "nested"));
  // Directories that two threads keep moving into each other and back.
  std::vector<uint64_t> hot_dirs = {Mkdir(kRoot, "h0"), Mkdir(kRoot, "h1"), Mkdir(kRoot, "h2")};
  const uint64_t retries_before = metrics::GetCounter("cairn_namespace_lock_retries_total").Value();

  constexpr int kWorkers = 8, kOps = 1500;
  std::vector<Model> models(kWorkers);
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  auto fail = [&](const std::string& what, const Status& st) {
    if (failures++ < 20) ADD_FAILURE() << what << ": " << st.ToString();
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < kWorkers; ++t) {
    threads.emplace_back([&, t] {
      Model& m = models[t];
      std::mt19937 rng(1000 + t);
      int next_name = 0, next_file = 0;
      auto fresh = [&] { return "t" + std::to_string(t) + "_" + std::to_string(next_name++); };
      auto pick_dir = [&]() -> uint64_t {
        const size_t n = shared.size() + m.subdirs.size();
        size_t i = rng() % n;
        if (i < shared.size()) return shared[i];
        return std::next(m.subdirs.begin(), static_cast<long>(i - shared.size()))->first;
      };
      auto pick_link = [&] { return std::next(m.links.begin(), rng() % m.links.size())->first; };
      for (int op = 0; op < kOps; ++op) {
        const unsigned r = rng() % 100;
        if (r < 25 || m.links.size() < 4) {  // create
          const uint64_t dir = pick_dir();
          const std::string name = fresh();
          const int id = next_file++;
          const std::string data = name + std::string(rng() % 300, 'x');
          auto st = fs_->Create(ctx_, dir, name, 0644, O_WRONLY);
          if (!st) {
            fail("create " + name, st.error());
            continue;
          }
          auto n = fs_->Write(st->st_ino, 0, data.data(), data.size());
          if (!n) fail("write " + name, n.error());
          (void)fs_->Release(st->st_ino);
          fs_->Forget(st->st_ino, 1);
          m.links[{dir, name}] = id;
          m.contents[id] = data;
        } else if (r < 45) {  // rename to a fresh name, usually in another directory
          const auto from = pick_link();
          const std::pair<uint64_t, std::string> to{pick_dir(), fresh()};
          Status st = fs_->Rename(from.first, from.second, to.first, to.second, 0);
          if (!st.ok()) {
            fail("rename " + from.second, st);
            continue;
          }
          m.links[to] = m.links[from];
          m.links.erase(from);
        } else if (r < 55) {  // rename over another of its own names
          const auto from = pick_link();
          const auto to = pick_link();
          if (from == to) continue;
          Status st = fs_->Rename(from.first, from.second, to.first, to.second, 0);
          if (!st.ok()) {
            fail("rename over " + to.second, st);
            continue;
          }
          const int moved = m.links[from], victim = m.links[to];
          if (moved == victim) continue;  // two links of one file: POSIX says nothing happens
          m.links[to] = moved;
          m.links.erase(from);
          bool still_linked = false;
          for (const auto& [key, id] : m.links) still_linked |= id == victim;
          if (!still_linked) m.contents.erase(victim);
        } else if (r < 62) {  // exchange two names
          const auto a = pick_link();
          const auto b = pick_link();
          if (a == b) continue;
          Status st = fs_->Rename(a.first, a.second, b.first, b.second, RENAME_EXCHANGE);
          if (!st.ok()) {
            fail("exchange " + a.second, st);
            continue;
          }
          std::swap(m.links[a], m.links[b]);
        } else if (r < 72) {  // hard link
          const auto from = pick_link();
          auto ino = fs_->Lookup(from.first, from.second);
          if (!ino) {
            fail("lookup " + from.second, ino.error());
            continue;
          }
          fs_->Forget(ino->st_ino, 1);
          const std::pair<uint64_t, std::string> to{pick_dir(), fresh()};
          auto st = fs_->Link(ino->st_ino, to.first, to.second);
          if (!st) {
            fail("link " + to.second, st.error());
            continue;
          }
          fs_->Forget(st->st_ino, 1);
          m.links[to] = m.links[from];
        } else if (r < 90) {  // unlink
          const auto name = pick_link();
          Status st = fs_->Unlink(name.first, name.second);
          if (!st.ok()) {
            fail("unlink " + name.second, st);
            continue;
          }
          const int id = m.links[name];
          m.links.erase(name);
          bool still_linked = false;
          for (const auto& [key, other] : m.links) still_linked |= other == id;
          if (!still_linked) m.contents.erase(id);
        } else if (r < 94 || m.subdirs.empty()) {  // mkdir
          const uint64_t parent = shared[rng() % shared.size()];
          const std::string name = fresh();
          auto st = fs_->Mkdir(ctx_, parent, name, 0755);
          if (!st) {
            fail("mkdir " + name, st.error());
            continue;
          }
          fs_->Forget(st->st_ino, 1);
          m.subdirs[st->st_ino] = {parent, name};
        } else if (r < 98) {  // move one of its directories to another shared directory
          auto it = std::next(m.subdirs.begin(), rng() % m.subdirs.size());
          const std::pair<uint64_t, std::string> to{shared[rng() % shared.size()], fresh()};
          Status st = fs_->Rename(it->second.first, it->second.second, to.first, to.second, 0);
          if (!st.ok()) {
            fail("move directory " + it->second.second, st);
            continue;
          }
          it->second = to;
        } else {  // rmdir of an empty one
          auto it = std::next(m.subdirs.begin(), rng() % m.subdirs.size());
          bool empty = true;
          for (const auto& [key, id] : m.links) empty &= key.first != it->first;
          if (!empty) continue;
          Status st = fs_->Rmdir(it->second.first, it->second.second);
          if (!st.ok()) {
            fail("rmdir " + it->second.second, st);
            continue;
          }
          m.subdirs.erase(it);
        }
      }
    });
  }
  // Movers: h0..h2 into each other and back to the root. A move that would make a loop is
  // refused (EINVAL); one whose source moved meanwhile finds nothing (ENOENT).
  std::atomic<uint64_t> moves{0}, loops_refused{0};
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(77 + t);
      std::vector<uint64_t> places = {kRoot, hot_dirs[0], hot_dirs[1], hot_dirs[2]};
      while (!done) {
        const std::string name = "h" + std::to_string(rng() % 3);
        const uint64_t from = places[rng() % places.size()];
        const uint64_t to = places[rng() % places.size()];
        Status st = fs_->Rename(from, name, to, name, 0);
        if (st.ok()) {
          ++moves;
        } else if (st.code() == Code::kInvalid) {
          ++loops_refused;
        } else if (st.code() != Code::kNotFound) {
          fail("move " + name, st);
        }
      }
    });
  }
  for (int t = 0; t < kWorkers; ++t) threads[t].join();
  done = true;
  for (size_t t = kWorkers; t < threads.size(); ++t) threads[t].join();
  ASSERT_EQ(failures.load(), 0);

  const uint64_t retries =
      metrics::GetCounter("cairn_namespace_lock_retries_total").Value() - retries_before;
  std::printf("directory moves %lu, loops refused %lu, lock-order retries %lu\n",
              static_cast<unsigned long>(moves.load()),
              static_cast<unsigned long>(loops_refused.load()),
              static_cast<unsigned long>(retries));

  // The fixed directories stay where they were; the hot ones are each somewhere, once.
  std::vector<uint64_t> fixed_and_hot = shared;
  fixed_and_hot.insert(fixed_and_hot.end(), hot_dirs.begin(), hot_dirs.end());
  auto tree = Walk();
  for (uint64_t h : hot_dirs) {
    size_t found = 0;
    for (const auto& [key, ino] : tree) found += ino == h;
    EXPECT_EQ(found, 1u);
  }
  Check(models, fixed_and_hot);
  if (HasFailure()) return;

  fs_.reset();
  auto report = Fsck(dir_);
  ASSERT_TRUE(report) << report.error().ToString();
  for (const auto& p : report->problems) ADD_FAILURE() << "fsck: " << p;
  Open();
  Check(models, fixed_and_hot);
}

}  // namespace
}  // namespace cairn::fs
