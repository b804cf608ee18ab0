// libcairn (include/cairn/client.h) against a real mount: every byte it reads equals what the
// mount reads, in whole files, random ranges and batches; holes, inline files, overwritten
// ranges and files spanning segments; errors for bad input; and a damaged segment gives an error,
// never data. Also runs on a cluster file system (CAIRN_TEST_CLUSTER_ENV), where the client reads
// the segments from the cluster's RADOS pool itself.
#include <cairn/client.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "mount_fixture.h"

namespace cairn::integration {
namespace {

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * kKiB;

bool OnCluster() {
  const char* env = ::getenv("CAIRN_TEST_CLUSTER_ENV");
  return env && *env;
}

class NativeClientTest : public MountedTest {
 protected:
  // The whole mount as a dataset; null after a failure that it reports.
  std::unique_ptr<Dataset> WholeMount() {
    auto client = Client::Open(mount_->mountpoint());
    if (!client) {
      ADD_FAILURE() << client.error().message;
      return nullptr;
    }
    auto ds = (*client)->OpenDataset("");
    if (!ds) {
      ADD_FAILURE() << ds.error().message;
      return nullptr;
    }
    return std::move(*ds);
  }

  // Takes every file of the epoch and checks it is the next one of the order, with its content.
  static void ExpectEpoch(Epoch& epoch, const Dataset& d, const std::vector<size_t>& order,
                          const std::map<std::string, std::string>& set) {
    for (size_t k = 0; k < order.size(); ++k) {
      auto s = epoch.Next();
      ASSERT_TRUE(s) << k << ": " << s.error().message;
      ASSERT_TRUE(s->has_value()) << "ended early at " << k;
      ASSERT_EQ((*s)->file, order[k]) << k;
      ASSERT_TRUE((*s)->data == set.at(d.file(order[k]).path)) << d.file(order[k]).path;
    }
    auto end = epoch.Next();
    ASSERT_TRUE(end);
    EXPECT_FALSE(end->has_value());
    EXPECT_EQ(epoch.position(), order.size());
  }

  // Files of every shape, written through the mount: name -> content.
  std::map<std::string, std::string> WriteSet() {
    std::map<std::string, std::string> set;
    auto put = [&](const std::string& name, std::string content) {
      EXPECT_EQ(WriteFile(Path(name), content), 0) << name;
      set[name] = std::move(content);
    };
    EXPECT_EQ(::mkdir(Path("d1").c_str(), 0755), 0);
    EXPECT_EQ(::mkdir(Path("d1/d2").c_str(), 0755), 0);
    put("empty", "");
    put("tiny", "a small file, kept inline in the metadata");
    put("edge", PatternBytes(1, 4 * kKiB + 1));
    put("sample", PatternBytes(2, 115 * kKiB));
    put("big", PatternBytes(3, 3 * kMiB + 123));
    put("d1/a", PatternBytes(4, 70 * kKiB));
    put("d1/d2/b", PatternBytes(5, 200 * kKiB + 7));
    // A hole between two written ranges.
    {
      int fd = ::open(Path("sparse").c_str(), O_CREAT | O_WRONLY, 0644);
      EXPECT_GE(fd, 0);
      const std::string head = PatternBytes(6, 10000), tail = PatternBytes(7, 5000);
      EXPECT_EQ(::pwrite(fd, head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
      EXPECT_EQ(::pwrite(fd, tail.data(), tail.size(), 2 * kMiB + 5),
                static_cast<ssize_t>(tail.size()));
      ::close(fd);
      std::string all(2 * kMiB + 5 + tail.size(), '\0');
      all.replace(0, head.size(), head);
      all.replace(2 * kMiB + 5, tail.size(), tail);
      set["sparse"] = all;
    }
    // A range overwritten at an unaligned offset: two extents of different ages.
    {
      std::string base = PatternBytes(8, 300 * kKiB);
      EXPECT_EQ(WriteFile(Path("over"), base), 0);
      const std::string patch = PatternBytes(9, 50 * kKiB);
      int fd = ::open(Path("over").c_str(), O_WRONLY);
      EXPECT_GE(fd, 0);
      EXPECT_EQ(::pwrite(fd, patch.data(), patch.size(), 100001),
                static_cast<ssize_t>(patch.size()));
      ::close(fd);
      base.replace(100001, patch.size(), patch);
      set["over"] = base;
    }
    return set;
  }
};

TEST_F(NativeClientTest, ReadsEveryByteAsTheMountDoes) {
  const auto set = WriteSet();
  auto client = Client::Open(mount_->mountpoint());
  ASSERT_TRUE(client) << client.error().message;
  auto ds = (*client)->OpenDataset("");
  ASSERT_TRUE(ds) << ds.error().message;
  Dataset& d = **ds;
  ASSERT_EQ(d.size(), set.size());
  for (const auto& [name, content] : set) {
    // The mount reads the same bytes (the reference the client must equal).
    ASSERT_TRUE(FileHasContent(Path(name), content)) << name;
    auto i = d.Find(name);
    ASSERT_TRUE(i) << name;
    EXPECT_EQ(d.file(*i).size, content.size()) << name;
    std::string buf(content.size() + 10, 'x');
    auto n = d.Read(*i, 0, buf.size(), buf.data());
    ASSERT_TRUE(n) << name << ": " << n.error().message;
    EXPECT_EQ(*n, content.size()) << name;
    EXPECT_TRUE(buf.substr(0, content.size()) == content) << name;
    // Past the end: nothing.
    auto past = d.Read(*i, content.size() + 1, 10, buf.data());
    ASSERT_TRUE(past);
    EXPECT_EQ(*past, 0u);
  }
  // Random ranges, compared with the content.
  std::mt19937_64 rng(7);
  std::vector<std::string> names;
  for (const auto& [name, content] : set) {
    if (!content.empty()) names.push_back(name);
  }
  for (int k = 0; k < 400; ++k) {
    const std::string& name = names[rng() % names.size()];
    const std::string& content = set.at(name);
    const uint64_t off = rng() % content.size();
    const size_t len = 1 + rng() % std::min<size_t>(content.size(), 300 * kKiB);
    std::string buf(len, 'x');
    auto n = d.Read(*d.Find(name), off, len, buf.data());
    ASSERT_TRUE(n) << name << " @" << off << "+" << len << ": " << n.error().message;
    const size_t want = std::min<size_t>(len, content.size() - off);
    ASSERT_EQ(*n, want) << name;
    ASSERT_TRUE(buf.substr(0, want) == content.substr(off, want))
        << name << " @" << off << "+" << len;
  }
  // One batch of every file, whole.
  std::vector<std::string> bufs;
  std::vector<ReadRequest> reqs;
  for (size_t i = 0; i < d.size(); ++i) bufs.emplace_back(d.file(i).size, 'x');
  for (size_t i = 0; i < d.size(); ++i) reqs.push_back({i, 0, bufs[i].size(), bufs[i].data()});
  size_t done = 0;
  d.ReadBatch(reqs, [&](const ReadResult& r) {
    ++done;
    ASSERT_TRUE(r.bytes) << r.bytes.error().message;
    EXPECT_EQ(*r.bytes, reqs[r.request].length);
  });
  EXPECT_EQ(done, d.size());
  for (size_t i = 0; i < d.size(); ++i) {
    EXPECT_TRUE(bufs[i] == set.at(d.file(i).path)) << d.file(i).path;
  }
  // Every segment is a file of the data directory, or an object of the cluster's pool that this
  // process reads with its own connection: nothing goes through the mount.
  const DatasetStats st = d.stats();
  EXPECT_GT(st.direct_bytes, 0u);
  EXPECT_EQ(st.mount_bytes, 0u);
  EXPECT_GT(st.inline_bytes, 0u);
  EXPECT_NE(d.source().find(OnCluster() ? "RADOS pool cairn" : "segment files in "),
            std::string::npos)
      << d.source();

  // The index serialized (for another process) opens the same dataset, without the daemon.
  auto copy = (*client)->OpenDataset("", d.Serialize());
  ASSERT_TRUE(copy) << copy.error().message;
  ASSERT_EQ((*copy)->size(), d.size());
  for (size_t i = 0; i < d.size(); ++i) {
    ASSERT_EQ((*copy)->file(i).path, d.file(i).path);
    std::string buf(d.file(i).size, 'x');
    auto n = (*copy)->Read(i, 0, buf.size(), buf.data());
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_TRUE(buf == set.at(d.file(i).path)) << d.file(i).path;
  }
  EXPECT_EQ((*copy)->source(), d.source());
  auto elsewhere = (*client)->OpenDataset("d1", d.Serialize());  // the index of another dir
  ASSERT_FALSE(elsewhere);
  EXPECT_EQ(elsewhere.error().code, EINVAL);
  for (const std::string bad : {"", "{}", "[1]", R"({"cairn_dataset_index":1,"files":[[1]]})"}) {
    auto no = (*client)->OpenDataset("", bad);
    ASSERT_FALSE(no) << bad;
    EXPECT_EQ(no.error().code, EINVAL) << bad;
  }

  // A subdirectory: paths relative to it, in the documented order.
  auto sub = (*client)->OpenDataset("d1");
  ASSERT_TRUE(sub) << sub.error().message;
  ASSERT_EQ((*sub)->size(), 2u);
  EXPECT_EQ((*sub)->file(0).path, "a");
  EXPECT_EQ((*sub)->file(1).path, "d2/b");
}

TEST_F(NativeClientTest, AnEpochHandsOutFilesInTheGivenOrderWithinItsBudget) {
  const auto set = WriteSet();
  auto ds = WholeMount();
  ASSERT_TRUE(ds);
  Dataset& d = *ds;
  // A shuffled order with every file three times.
  std::vector<size_t> order;
  for (int r = 0; r < 3; ++r) {
    for (size_t i = 0; i < d.size(); ++i) order.push_back(i);
  }
  std::mt19937_64 rng(11);
  std::shuffle(order.begin(), order.end(), rng);
  uint64_t largest = 0;
  for (size_t i = 0; i < d.size(); ++i) largest = std::max(largest, d.file(i).size);
  PrefetchOptions o;
  o.budget_bytes = 512 * kKiB;
  o.threads = 4;
  auto epoch = d.BeginEpoch(order, o);
  ASSERT_TRUE(epoch) << epoch.error().message;
  ExpectEpoch(**epoch, d, order, set);
  // Past the budget only by the one file the reader waits for.
  EXPECT_LE((*epoch)->peak_bytes(), o.budget_bytes + largest);
  EXPECT_GT((*epoch)->peak_bytes(), 0u);
  // Stopping early: the destructor waits for reads in flight.
  auto early = d.BeginEpoch(order, o);
  ASSERT_TRUE(early);
  ASSERT_TRUE((*early)->Next());
  early->reset();
  auto bad = d.BeginEpoch({d.size()}, o);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, EINVAL);
}

TEST_F(NativeClientTest, AnEpochBringsEvictedSegmentsBackAheadOfItsReads) {
  if (OnCluster()) {
    // The cluster suites' file systems have no object store; integration_cluster_test covers
    // a cluster's evicted segments, which the client reads through the mount.
    CommandResult flush = RunCairn({"tier", "flush", mount_->mountpoint()});
    EXPECT_FALSE(flush.ok());
    EXPECT_NE(flush.err.find("no object store"), std::string::npos) << flush.Describe();
    GTEST_SKIP() << "no object store to evict to";
  }
  const auto set = WriteSet();
  // Everything uploaded to the object store, then evicted from NVMe.
  CommandResult flush =
      RunCairn({"tier", "flush", mount_->mountpoint()}, std::chrono::seconds(120));
  ASSERT_TRUE(flush.ok()) << flush.Describe();
  CommandResult release = RunCairn({"tier", "release", mount_->mountpoint()});
  ASSERT_TRUE(release.ok()) << release.Describe();
  auto ds = WholeMount();
  ASSERT_TRUE(ds);
  Dataset& d = *ds;
  std::vector<size_t> order;
  for (size_t i = 0; i < d.size(); ++i) order.push_back(d.size() - 1 - i);
  auto epoch = d.BeginEpoch(order);
  ASSERT_TRUE(epoch) << epoch.error().message;
  ExpectEpoch(**epoch, d, order, set);
  EXPECT_GT(d.stats().hydrated_segments, 0u);
  // Back on NVMe: a second pass reads every file directly.
  const uint64_t mount_before = d.stats().mount_bytes;
  for (size_t i = 0; i < d.size(); ++i) {
    std::string buf(d.file(i).size, 'x');
    auto n = d.Read(i, 0, buf.size(), buf.data());
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_TRUE(buf == set.at(d.file(i).path)) << d.file(i).path;
  }
  EXPECT_EQ(d.stats().mount_bytes, mount_before);
}

TEST_F(NativeClientTest, AnEpochCachesImportedObjectsAheadOfItsReads) {
  // A directory of objects (a file:// store), imported: the data lives only there.
  const std::string store = mount_->root() + "/import-src";
  ASSERT_EQ(::mkdir(store.c_str(), 0755), 0);
  std::map<std::string, std::string> set;
  for (int i = 0; i < 12; ++i) {
    const std::string name = "o" + std::to_string(i);
    set[name] = PatternBytes(20 + i, 90 * kKiB + static_cast<size_t>(i) * 1000);
    ASSERT_EQ(WriteFile(store + "/" + name, set[name]), 0);
  }
  CommandResult import = RunCairn({"import", "file://" + store, Path("imp")});
  ASSERT_TRUE(import.ok()) << import.Describe();
  auto client = Client::Open(mount_->mountpoint());
  ASSERT_TRUE(client) << client.error().message;
  auto ds = (*client)->OpenDataset("imp");
  ASSERT_TRUE(ds) << ds.error().message;
  Dataset& d = **ds;
  ASSERT_EQ(d.size(), set.size());
  std::vector<size_t> order;
  for (size_t i = 0; i < d.size(); ++i) order.push_back((i * 5) % d.size());
  PrefetchOptions o;
  o.budget_bytes = 256 * kKiB;
  o.threads = 3;
  auto epoch = d.BeginEpoch(order, o);
  ASSERT_TRUE(epoch) << epoch.error().message;
  ExpectEpoch(**epoch, d, order, set);
  epoch->reset();
  // The first file's object is claimed before any read starts, so it at least was fetched by
  // the epoch; readers that got ahead of the hydrator read through the mount.
  EXPECT_GT(d.stats().hydrated_objects, 0u);
  EXPECT_EQ(d.stats().hydrated_segments, 0u);
  // Every object is cached on NVMe now (by the epoch or by the daemon's reads): deleting the
  // store's copies leaves the files readable.
  for (const auto& [name, content] : set) {
    ASSERT_EQ(::unlink((store + "/" + name).c_str()), 0) << name;
  }
  for (size_t i = 0; i < d.size(); ++i) {
    EXPECT_TRUE(FileHasContent(Path("imp/" + d.file(i).path), set.at(d.file(i).path)))
        << d.file(i).path;
  }
  // The client reads the cached objects itself now, each chunk checked: whole, and a range
  // across a chunk boundary.
  const uint64_t mount_before = d.stats().mount_bytes;
  for (size_t i = 0; i < d.size(); ++i) {
    const std::string& want = set.at(d.file(i).path);
    std::string buf(d.file(i).size, 'x');
    auto n = d.Read(i, 0, buf.size(), buf.data());
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_TRUE(buf == want) << d.file(i).path;
    std::string part(40 * kKiB, 'x');
    auto m = d.Read(i, 50 * kKiB, part.size(), part.data());
    ASSERT_TRUE(m) << m.error().message;
    ASSERT_EQ(*m, std::min(part.size(), want.size() - 50 * kKiB));
    EXPECT_TRUE(part.substr(0, *m) == want.substr(50 * kKiB, *m)) << d.file(i).path;
  }
  EXPECT_EQ(d.stats().mount_bytes, mount_before);
  // A damaged cache file is an error, never data.
  const std::string cached = mount_->data_dir() + "/objcache";
  DIR* dir = ::opendir(cached.c_str());
  ASSERT_NE(dir, nullptr);
  std::string victim;
  while (struct dirent* e = ::readdir(dir)) {
    if (std::string(e->d_name).ends_with(".obj")) victim = cached + "/" + e->d_name;
  }
  ::closedir(dir);
  ASSERT_FALSE(victim.empty());
  auto bytes = ReadFile(victim);
  ASSERT_TRUE(bytes);
  (*bytes)[600] ^= 0x5a;  // in the object's first chunk, past the 512-byte header
  ASSERT_EQ(WriteFile(victim, *bytes), 0);
  const uint64_t ino = std::stoull(victim.substr(victim.rfind('/') + 1, 16), nullptr, 16);
  bool checked = false;
  for (size_t i = 0; i < d.size(); ++i) {
    if (d.file(i).ino != ino) continue;
    std::string buf(d.file(i).size, 'x');
    auto n = d.Read(i, 0, buf.size(), buf.data());
    ASSERT_FALSE(n) << d.file(i).path << " read damaged bytes as data";
    EXPECT_EQ(n.error().code, EIO);
    EXPECT_NE(n.error().message.find("checksum"), std::string::npos) << n.error().message;
    checked = true;
  }
  EXPECT_TRUE(checked) << victim << " is no file of the dataset";
  ASSERT_EQ(::rmdir(store.c_str()), 0);
}

TEST_F(NativeClientTest, BadInputGetsClearErrors) {
  ASSERT_EQ(WriteFile(Path("f"), "x"), 0);
  auto none = Client::Open("/");
  ASSERT_FALSE(none);
  EXPECT_FALSE(none.error().message.empty());
  auto client = Client::Open(mount_->mountpoint() + "/");
  ASSERT_TRUE(client) << client.error().message;
  auto missing = (*client)->OpenDataset("nope");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("nope"), std::string::npos) << missing.error().message;
  auto file = (*client)->OpenDataset("f");
  ASSERT_FALSE(file);
  EXPECT_NE(file.error().message.find("not a directory"), std::string::npos)
      << file.error().message;
  auto up = (*client)->OpenDataset("../x");
  ASSERT_FALSE(up);
  auto ds = (*client)->OpenDataset("");
  ASSERT_TRUE(ds);
  char c;
  auto out = (*ds)->Read(99, 0, 1, &c);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, EINVAL);
  EXPECT_EQ((*ds)->Find("g").error().code, ENOENT);
}

// One byte flipped past the header of every segment file of the data directory; returns how many.
int DamageSegmentFiles(const std::string& data_dir) {
  const std::string segs = data_dir + "/segments";
  DIR* dir = ::opendir(segs.c_str());
  EXPECT_NE(dir, nullptr) << segs;
  if (!dir) return 0;
  int damaged = 0;
  while (struct dirent* e = ::readdir(dir)) {
    std::string n = e->d_name;
    if (n.size() < 4 || n.substr(n.size() - 4) != ".seg") continue;
    const std::string path = segs + "/" + n;
    int fd = ::open(path.c_str(), O_RDWR);
    EXPECT_GE(fd, 0) << path;
    char b;
    if (fd >= 0 && ::pread(fd, &b, 1, 5000) == 1) {
      b ^= 0x5a;
      if (::pwrite(fd, &b, 1, 5000) == 1) ++damaged;
    }
    ::close(fd);
  }
  ::closedir(dir);
  return damaged;
}

// One byte flipped past the header of every object of this file system in the cluster's pool
// (with the rados command, as an operator's mistake or a bad disk would); returns how many.
int DamagePoolObjects(const std::string& data_dir) {
  auto super = ReadFile(data_dir + "/cairn.json");
  EXPECT_TRUE(super) << "no superblock in " << data_dir;
  if (!super) return 0;
  const std::string uuid = nlohmann::json::parse(*super).at("uuid").get<std::string>();
  const std::string conf = ClusterEnv("CEPH_CONF");
  auto rados = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"rados", "-c", conf, "-p", "cairn"});
    CommandResult r = RunCommand(args);
    EXPECT_TRUE(r.ok()) << r.Describe();
    return r;
  };
  int damaged = 0;
  std::istringstream listing(rados({"ls"}).out);
  for (std::string oid; std::getline(listing, oid);) {
    if (!oid.starts_with(uuid + ".") || !oid.ends_with(".seg")) continue;
    const std::string copy = data_dir + "/damaged.seg";
    if (!rados({"get", oid, copy}).ok()) continue;
    auto bytes = ReadFile(copy);
    if (bytes && bytes->size() > 5000) {
      (*bytes)[5000] ^= 0x5a;
      EXPECT_EQ(WriteFile(copy, *bytes), 0);
      if (rados({"put", oid, copy}).ok()) ++damaged;
    }
    ::unlink(copy.c_str());
  }
  return damaged;
}

TEST_F(NativeClientTest, ADamagedSegmentIsAnErrorNeverData) {
  const auto set = WriteSet();
  auto ds = WholeMount();
  ASSERT_TRUE(ds);
  // One byte flipped in every segment file (or pool object), past its header.
  const int damaged =
      OnCluster() ? DamagePoolObjects(mount_->data_dir()) : DamageSegmentFiles(mount_->data_dir());
  ASSERT_GT(damaged, 0);
  int errors = 0;
  for (size_t i = 0; i < ds->size(); ++i) {
    const std::string& content = set.at(ds->file(i).path);
    std::string buf(content.size(), 'x');
    auto n = ds->Read(i, 0, buf.size(), buf.data());
    if (!n) {
      EXPECT_EQ(n.error().code, EIO) << n.error().message;
      EXPECT_NE(n.error().message.find("checksum"), std::string::npos) << n.error().message;
      ++errors;
      continue;
    }
    EXPECT_TRUE(buf == content) << ds->file(i).path << " read damaged bytes as data";
  }
  EXPECT_GT(errors, 0);
}
}  // namespace
}  // namespace cairn::integration
