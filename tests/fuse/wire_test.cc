// The FUSE wire decoder and the request semantics above it, fed requests as the kernel writes
// them and as it never should: truncated, oversized, unknown, names without their NUL. Each bad
// one gets an error for the kernel (EINVAL, ENOSYS), never a read past the buffer or a crash.
#include "fuse/wire.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "fs/options.h"
#include "fuse/kernel_abi.h"
#include "fuse/ops.h"

namespace cairn::fuse {
namespace {

// A request as /dev/fuse delivers it: header, fixed argument, then the rest.
template <typename Arg>
std::string Raw(uint32_t opcode, uint64_t nodeid, const Arg* arg, std::string_view rest,
                uint64_t unique = 7) {
  fuse_in_header h{};
  h.opcode = opcode;
  h.nodeid = nodeid;
  h.unique = unique;
  const size_t arg_size = arg ? sizeof(Arg) : 0;
  h.len = static_cast<uint32_t>(sizeof(h) + arg_size + rest.size());
  std::string out(reinterpret_cast<const char*>(&h), sizeof(h));
  if (arg) out.append(reinterpret_cast<const char*>(arg), sizeof(Arg));
  out.append(rest);
  return out;
}
std::string Raw(uint32_t opcode, uint64_t nodeid, std::string_view rest, uint64_t unique = 7) {
  return Raw<char>(opcode, nodeid, nullptr, rest, unique);
}

wire::Session Modern() {
  wire::Session s;
  s.minor = 45;
  s.flags = FUSE_SETXATTR_EXT;
  s.max_write = 1 << 20;
  return s;
}

TEST(Wire, SplitsHeaderArgumentAndRest) {
  fuse_getattr_in in{};
  in.fh = 3;
  const std::string raw = Raw(FUSE_GETATTR, 1, &in, "");
  uint64_t unique = 0;
  auto r = wire::ParseDev(raw, Modern(), &unique);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(unique, 7u);
  EXPECT_EQ(r->nodeid(), 1u);
  EXPECT_EQ(r->As<fuse_getattr_in>().fh, 3u);
  EXPECT_TRUE(r->rest.empty());

  const std::string lookup = Raw(FUSE_LOOKUP, 1, std::string_view("name\0", 5));
  auto l = wire::ParseDev(lookup, Modern(), &unique);  // views into lookup
  ASSERT_TRUE(l);
  std::string_view rest = l->rest;
  auto name = wire::TakeString(&rest);
  ASSERT_TRUE(name);
  EXPECT_EQ(*name, "name");
  EXPECT_TRUE(rest.empty());
}

TEST(Wire, RefusesTruncatedOversizedAndUnknownRequests) {
  uint64_t unique = 0;
  // Shorter than a header: nothing to answer.
  EXPECT_EQ(wire::ParseDev("abc", Modern(), &unique).error().code(), Code::kInvalid);
  EXPECT_EQ(unique, 0u);
  // A fixed argument cut short: answered EINVAL.
  fuse_write_in w{};
  std::string raw = Raw(FUSE_WRITE, 2, &w, "");
  raw.resize(raw.size() - 8);
  fuse_in_header h;
  std::memcpy(&h, raw.data(), sizeof(h));
  h.len = static_cast<uint32_t>(raw.size());
  std::memcpy(raw.data(), &h, sizeof(h));
  EXPECT_EQ(wire::ParseDev(raw, Modern(), &unique).error().code(), Code::kInvalid);
  EXPECT_EQ(unique, 7u);
  // A header whose length disagrees with what arrived.
  raw = Raw(FUSE_STATFS, 1, "");
  raw.push_back('x');
  EXPECT_EQ(wire::ParseDev(raw, Modern(), &unique).error().code(), Code::kInvalid);
  // An opcode Cairn does not serve: ENOSYS, and the kernel stops asking.
  EXPECT_EQ(wire::ParseDev(Raw(FUSE_FLUSH, 1, ""), Modern(), &unique).error().code(),
            Code::kNotSupported);
  EXPECT_EQ(wire::ParseDev(Raw(9999, 1, ""), Modern(), &unique).error().code(),
            Code::kNotSupported);
  // A name without its NUL.
  std::string_view rest("abc", 3);
  EXPECT_FALSE(wire::TakeString(&rest));
}

TEST(Wire, SetxattrArgumentFollowsTheNegotiatedForm) {
  wire::Session old = Modern();
  old.flags = 0;
  EXPECT_EQ(*wire::ArgSize(FUSE_SETXATTR, old), size_t{FUSE_COMPAT_SETXATTR_IN_SIZE});
  EXPECT_EQ(*wire::ArgSize(FUSE_SETXATTR, Modern()), sizeof(fuse_setxattr_in));
}

TEST(Wire, RingRequestsKeepTheirArgumentApart) {
  abi::UringReqHeader header{};
  fuse_in_header h{};
  h.opcode = FUSE_READ;
  h.unique = 11;
  h.nodeid = 5;
  std::memcpy(header.in_out, &h, sizeof(h));
  fuse_read_in in{};
  in.size = 4096;
  std::memcpy(header.op_in, &in, sizeof(in));
  uint64_t unique = 0;
  auto r =
      wire::ParseRing(std::string_view(header.in_out, sizeof(header.in_out)),
                      std::string_view(header.op_in, sizeof(header.op_in)), "", Modern(), &unique);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(unique, 11u);
  EXPECT_EQ(r->As<fuse_read_in>().size, 4096u);
  EXPECT_EQ(wire::ParseRing("short", "", "", Modern(), &unique).error().code(), Code::kInvalid);
}

TEST(Wire, InitTakesWhatBothSidesHave) {
  fuse_init_in in{};
  in.major = 7;
  in.minor = 45;
  in.max_readahead = 128 << 10;
  in.flags = FUSE_ASYNC_READ | FUSE_MAX_PAGES | FUSE_INIT_EXT;
  in.flags2 = static_cast<uint32_t>((abi::kOverIoUring | abi::kPassthrough) >> 32);
  wire::InitWants w;
  w.flags =
      FUSE_ASYNC_READ | FUSE_MAX_PAGES | FUSE_WRITEBACK_CACHE | FUSE_INIT_EXT | abi::kOverIoUring;
  wire::Session s;
  auto out = wire::NegotiateInit(in, w, &s);
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(out->minor, abi::kMinorVersion);
  EXPECT_EQ(out->flags, FUSE_ASYNC_READ | FUSE_MAX_PAGES | FUSE_INIT_EXT);  // no writeback
  EXPECT_EQ(out->flags2, static_cast<uint32_t>(abi::kOverIoUring >> 32));   // no passthrough
  EXPECT_EQ(out->max_readahead, 128u << 10);
  EXPECT_EQ(out->max_pages, (1u << 20) / 4096);
  EXPECT_TRUE(s.Has(abi::kOverIoUring));

  in.minor = 20;  // a kernel too old
  EXPECT_EQ(wire::NegotiateInit(in, w, &s).error().code(), Code::kNotSupported);
  in.minor = 45;
  in.major = 8;
  EXPECT_EQ(wire::NegotiateInit(in, w, &s).error().code(), Code::kNotSupported);
}

// A Reply that keeps what was sent.
class Captured final : public Reply {
 public:
  char* Body() override { return body_.data(); }
  size_t Capacity() const override { return body_.size(); }
  int Send(int error, size_t len) override {
    ++sends;
    this->error = error;
    this->len = len;
    return 0;
  }
  int sends = 0, error = -1;
  size_t len = 0;
  std::vector<char> body_ = std::vector<char>(1 << 20);
};

class OpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("cairn-ops-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(fs::Format(dir_, {}).ok());
    fs::MountOptions mo;
    mo.compaction_interval_s = 0;
    auto f = fs::FileSystem::Open(dir_, mo);
    ASSERT_TRUE(f) << f.error().ToString();
    fs_ = std::move(*f);
    ops_ = std::make_unique<Ops>(fs_.get(), FuseOptions{});
    ops_->SetSession(Modern());
  }
  void TearDown() override {
    ops_.reset();
    fs_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Parses and serves raw; returns the reply (sends == 0 when there was none).
  Captured Serve(const std::string& raw) {
    Captured c;
    uint64_t unique = 0;
    auto req = wire::ParseDev(raw, ops_->session(), &unique);
    EXPECT_TRUE(req) << req.error().ToString();
    if (req) ops_->Serve(*req, c);
    return c;
  }

  std::string dir_;
  std::unique_ptr<fs::FileSystem> fs_;
  std::unique_ptr<Ops> ops_;
};

TEST_F(OpsTest, AnswersWellFormedRequests) {
  fuse_getattr_in g{};
  Captured attr = Serve(Raw(FUSE_GETATTR, 1, &g, ""));
  ASSERT_EQ(attr.error, 0);
  ASSERT_EQ(attr.len, sizeof(fuse_attr_out));
  fuse_attr_out out;
  std::memcpy(&out, attr.body_.data(), sizeof(out));
  EXPECT_EQ(out.attr.ino, 1u);
  EXPECT_TRUE(S_ISDIR(out.attr.mode));

  fuse_mkdir_in m{};
  m.mode = 0755;
  Captured made = Serve(Raw(FUSE_MKDIR, 1, &m, std::string_view("d\0", 2)));
  ASSERT_EQ(made.error, 0);
  fuse_entry_out e;
  std::memcpy(&e, made.body_.data(), sizeof(e));
  EXPECT_NE(e.nodeid, 0u);
  // A lookup of a missing name is a negative entry, not an error.
  Captured missing = Serve(Raw(FUSE_LOOKUP, 1, std::string_view("none\0", 5)));
  EXPECT_EQ(missing.error, 0);
  std::memcpy(&e, missing.body_.data(), sizeof(e));
  EXPECT_EQ(e.nodeid, 0u);
  // FORGET takes no reply.
  fuse_forget_in f{};
  f.nlookup = 1;
  EXPECT_EQ(Serve(Raw(FUSE_FORGET, e.nodeid == 0 ? 1 : e.nodeid, &f, "")).sends, 0);
}

TEST_F(OpsTest, MalformedArgumentsGetEinvalAndChangeNothing) {
  // A name without its NUL.
  fuse_mkdir_in m{};
  m.mode = 0755;
  Captured c = Serve(Raw(FUSE_MKDIR, 1, &m, "noterm"));
  EXPECT_EQ(c.sends, 1);
  EXPECT_EQ(c.error, EINVAL);
  EXPECT_EQ(fs_->Lookup(1, "noterm").error().code(), Code::kNotFound);
  // A write whose data is shorter than its size.
  fuse_create_in cr{};
  cr.mode = 0644;
  Captured made = Serve(Raw(FUSE_CREATE, 1, &cr, std::string_view("f\0", 2)));
  ASSERT_EQ(made.error, 0);
  fuse_entry_out e;
  std::memcpy(&e, made.body_.data(), sizeof(e));
  fuse_write_in w{};
  w.size = 100;
  c = Serve(Raw(FUSE_WRITE, e.nodeid, &w, "only ten b"));
  EXPECT_EQ(c.error, EINVAL);
  EXPECT_EQ(fs_->GetAttr(e.nodeid)->st_size, 0);
  // A batch of forgets that lists more than it carries: what fits is taken, no reply.
  fuse_batch_forget_in b{};
  b.count = 1000;
  EXPECT_EQ(Serve(Raw(FUSE_BATCH_FORGET, 0, &b, "")).sends, 0);
  // A second INIT.
  fuse_init_in init{};
  init.major = 7;
  init.minor = 45;
  EXPECT_EQ(Serve(Raw(FUSE_INIT, 0, &init, "")).error, EINVAL);
}

}  // namespace
}  // namespace cairn::fuse
